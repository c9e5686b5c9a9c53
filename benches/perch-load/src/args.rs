//! `--name value` options of the commands that are not scenarios (`sink`,
//! `wait`, `floor`, `crash`, `soak`, `login-timing`, …): each command names
//! the options and bare flags it knows; anything else is a usage error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    pub fn parse(args: &[String], known: &[&str], flags: &[&str]) -> Result<Args, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument '{a}'"));
            };
            if flags.contains(&name) {
                pairs.push((name.to_string(), String::new()));
                continue;
            }
            if !known.contains(&name) {
                return Err(format!("unknown option --{name}"));
            }
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_string(), v.clone()));
        }
        Ok(Args { pairs })
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: '{v}' is not a number")),
        }
    }

    /// A number that must lie in `range`.
    pub fn bounded<T>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, String>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let v = self.number(name, default)?;
        if !range.contains(&v) {
            return Err(format!(
                "--{name}: {v} is outside {} to {}",
                range.start(),
                range.end()
            ));
        }
        Ok(v)
    }

    /// Seconds, finite and within a day.
    pub fn seconds(&self, name: &str, default: f64) -> Result<f64, String> {
        let v: f64 = self.number(name, default)?;
        if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
            return Err(format!(
                "--{name}: {v} is out of range (0 to 86400 seconds)"
            ));
        }
        Ok(v)
    }

    /// `--host` (loopback only) and `--port`.
    pub fn loopback(&self, default_port: u16) -> Result<SocketAddr, String> {
        let ip: IpAddr = match self.value("host") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(h) => h
                .parse()
                .map_err(|_| format!("--host: '{h}' is not an IP address"))?,
        };
        if !ip.is_loopback() {
            return Err(format!("--host: {ip} is not a loopback address"));
        }
        Ok(SocketAddr::new(ip, self.number("port", default_port)?))
    }
}

/// `v`, the value of `--name`, as a number within `range` (for the
/// scenario settings, which read their options one by one).
pub fn number_in<T: FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    v: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    let n: T = v
        .parse()
        .map_err(|_| format!("--{name}: '{v}' is not a valid number"))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "--{name}: {n} is out of range ({} to {})",
            range.start(),
            range.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn values_flags_and_refusals() {
        let a = Args::parse(
            &args("--port 1 --keep --port 2 --seconds 1.5"),
            &["port", "seconds"],
            &["keep"],
        )
        .expect("valid");
        assert_eq!(a.value("port"), Some("2"));
        assert!(a.flag("keep") && !a.flag("port2"));
        assert_eq!(a.number::<u16>("port", 9), Ok(2));
        assert_eq!(a.number::<u16>("missing", 9), Ok(9));
        assert_eq!(a.seconds("seconds", 0.0), Ok(1.5));
        assert!(a.bounded::<u16>("port", 0, 3..=5).is_err());
        assert!(Args::parse(&args("--nope 1"), &["port"], &[]).is_err());
        assert!(Args::parse(&args("--port"), &["port"], &[]).is_err());
        assert!(Args::parse(&args("stray"), &["port"], &[]).is_err());
        let far = Args::parse(&args("--host 10.1.1.1"), &["host"], &[]).expect("parses");
        assert!(far.loopback(5222).is_err());
        let near = Args::parse(&args("--host ::1 --port 7"), &["host", "port"], &[]).expect("ok");
        assert_eq!(near.loopback(5222).map(|a| a.port()), Ok(7));
    }
}
