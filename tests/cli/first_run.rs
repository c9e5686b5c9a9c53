//! A first run (issue 13): where the data is, who may read it, passwords,
//! deleted addresses, `perch check`'s warnings and `perch room list`.

use std::path::Path;

use perch::testing::TempDir;
use rustix::process::Signal;

use crate::harness::*;

/// A configuration without data_dir (so the default applies), with the
/// plaintext test listener on port 0.
fn config_without_data_dir(dir: &Path) -> std::path::PathBuf {
    let text = server_config(Path::new("/unused"), 0).replacen("data_dir = \"/unused\"\n", "", 1);
    write_file(&dir.join("perch.toml"), &text)
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn commands_without_server_or_database_say_where_they_looked() {
    let dir = TempDir::new("cli-first-nodb");
    let data = default_data_of(dir.path());
    let export = dir.path().join("export");
    let backup = dir.path().join("backup.redb");
    let import = write_file(&dir.path().join("import.xml"), "<server-data/>");
    let (export, backup, import) = (
        export.to_str().expect("UTF-8"),
        backup.to_str().expect("UTF-8"),
        import.to_str().expect("UTF-8"),
    );
    for args in [
        &["user", "add", "alice@localhost", "--password-stdin"][..],
        &["user", "list"][..],
        &["user", "del", "alice@localhost"][..],
        &["room", "list"][..],
        &["backup", backup][..],
        &["export", export][..],
        &["import", import][..],
    ] {
        let out = cli(dir.path(), args, Some("password\n"));
        out.expect_code(1)
            .expect_stderr(&format!(
                "perch: no database at {} and no server running on it (no configuration file); start the server first (perch run), or name its configuration with --config FILE or $PERCH_CONFIG",
                data.join("perch.redb").display()
            ));
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
    }
    // Nothing was created: neither the default data directory nor the
    // one of earlier versions.
    assert!(!dir.path().join("home").exists());
    assert!(!dir.path().join("perch-data").exists());
}

/// The server and `perch user add` run from two different directories
/// find the same data: the default is not relative to the current one.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn the_default_data_directory_does_not_depend_on_the_current_one() {
    let dir = TempDir::new("cli-first-default");
    let config = config_without_data_dir(dir.path());
    let mut server = Server::start(&config);
    let data = default_data_of(dir.path());
    let log = server.log();
    assert!(
        log.contains(&format!("data: {}", data.join("perch.redb").display())),
        "the absolute data path is logged:\n{log}"
    );
    // Another directory, the same $HOME.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let mut cmd = perch(&elsewhere);
    cmd.env("HOME", home_of(dir.path())).args([
        "user",
        "add",
        "alice@localhost",
        "--password-stdin",
        "--config",
        config.to_str().expect("UTF-8"),
    ]);
    run_within(cmd, Some("password\n"), CLI_TIMEOUT)
        .expect_code(0)
        .expect_stdout("created alice@localhost");
    authenticate(server.c2s(), ("alice", "password")).expect("alice logs in");
    assert!(!elsewhere.join("perch-data").exists());
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("stops");
}

/// Data from an earlier version: `./perch-data` is still used when it
/// holds a database, with a warning that it is relative.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn an_existing_perch_data_directory_is_kept() {
    let dir = TempDir::new("cli-first-legacy");
    let legacy = dir.path().join("perch-data");
    create_database(&legacy);
    let config = config_without_data_dir(dir.path());
    let mut server = Server::start(&config);
    let log = server.log();
    assert!(
        log.contains("data: ") && log.contains("perch-data/perch.redb"),
        "{log}"
    );
    assert!(
        log.contains("data_dir ./perch-data is relative to the directory Perch was started in"),
        "{log}"
    );
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("stops");
    assert!(!dir.path().join("home").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn data_is_owner_only_and_check_reports_what_is_not() {
    let dir = TempDir::new("cli-first-modes");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    // What an earlier version left: readable by everyone.
    create_database(&data);
    let set = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    set(&data, 0o755);
    set(&data.join("perch.redb"), 0o644);
    let out = cli(
        dir.path(),
        &["check", "--config", config.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0)
        .expect_stderr(&format!(
            "perch: warning: directory {} has mode 0755, so other local users can list it (wanted: 0700)",
            data.display()
        ))
        .expect_stderr(&format!(
            "perch: warning: file {} has mode 0644, so other local users can read it (wanted: 0600); perch run changes it at its next start",
            data.join("perch.redb").display()
        ));

    let mut server = Server::start(&config);
    let log = server.log();
    assert!(
        log.contains(&format!(
            "{} was readable by other local users (mode 0644); changed it to 0600",
            data.join("perch.redb").display()
        )),
        "{log}"
    );
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(mode_of(&data.join("perch.redb")), 0o600);
    // New files: the self-signed key and certificate, a backup, an export.
    for name in ["localhost.crt", "localhost.key"] {
        assert_eq!(mode_of(&data.join("tls").join(name)), 0o600, "{name}");
    }
    assert_eq!(mode_of(&data.join("tls")), 0o700);
    user(
        &config,
        &["add", "alice@localhost", "--password-stdin"],
        Some("password\n"),
    )
    .expect_code(0);
    let backup = dir.path().join("backup.redb");
    let export = dir.path().join("export");
    let config_str = config.to_str().expect("UTF-8");
    for args in [
        &[
            "backup",
            backup.to_str().expect("UTF-8"),
            "--config",
            config_str,
        ][..],
        &[
            "export",
            export.to_str().expect("UTF-8"),
            "--config",
            config_str,
        ][..],
    ] {
        cli(dir.path(), args, None).expect_code(0);
    }
    assert_eq!(mode_of(&backup), 0o600);
    assert_eq!(mode_of(&export), 0o700);
    for entry in std::fs::read_dir(&export).expect("export") {
        let path = entry.expect("entry").path();
        assert_eq!(mode_of(&path), 0o600, "{}", path.display());
    }
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("stops");

    // The self-signed certificate's validity, as for a configured one.
    cli(dir.path(), &["check", "--config", config_str], None)
        .expect_code(0)
        .expect_stdout(&format!(
            "  certificate: self-signed, kept in {}: key matches, 1 certificate in chain, valid until ",
            data.join("tls").display()
        ));
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn passwords_are_asked_for_after_the_checks_and_must_be_long_enough() {
    let dir = TempDir::new("cli-first-password");
    let config = standard_config(&dir);
    create_database(&dir.path().join("data"));
    // No terminal and no --password-stdin: had the prompt come first, each
    // of these would fail asking for --password-stdin instead.
    user(&config, &["add", "alice@example.org"], None)
        .expect_code(2)
        .expect_stderr("'example.org' is not a host of this server");
    user(&config, &["passwd", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost does not exist");
    user(&config, &["add", "alice@localhost/phone"], None)
        .expect_code(2)
        .expect_stderr("without a /resource");

    // Too short, unless --weak (add, then passwd on the account made).
    for args in [
        &["add", "alice@localhost", "--password-stdin"][..],
        &["passwd", "alice@localhost", "--password-stdin"][..],
    ] {
        user(&config, args, Some("seven77\n"))
            .expect_code(2)
            .expect_stderr(
                "unusable password: shorter than 8 characters (add --weak to set it anyway)",
            );
        let mut weak = args.to_vec();
        weak.push("--weak");
        user(&config, &weak, Some("seven77\n")).expect_code(0);
    }
    // The account exists: found before the prompt too.
    user(&config, &["add", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost exists already");
    let server = Server::start(&config);
    authenticate(server.c2s(), ("alice", "seven77")).expect("the weak password was set");
    // The same through the admin socket.
    user(&config, &["add", "alice@localhost"], None)
        .expect_code(1)
        .expect_stderr("account alice@localhost exists already");
    user(&config, &["passwd", "nobody@localhost"], None)
        .expect_code(1)
        .expect_stderr("account nobody@localhost does not exist");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn a_deleted_address_can_be_given_out_again_on_purpose() {
    let dir = TempDir::new("cli-first-reuse");
    let config = standard_config(&dir);
    let mut server = Server::start(&config);
    let add = |extra: &[&str], password: &str| {
        let mut args = vec!["add", "alice@localhost", "--password-stdin"];
        args.extend_from_slice(extra);
        user(&config, &args, Some(password))
    };
    add(&[], "first-password\n").expect_code(0);
    user(&config, &["del", "alice@localhost"], None).expect_code(0);
    add(&[], "second-password\n")
        .expect_code(1)
        .expect_stderr(
            "alice@localhost belonged to a deleted account and cannot be registered again",
        )
        .expect_stderr("perch user add --reuse-deleted alice@localhost");
    let out = add(&["--reuse-deleted"], "second-password\n");
    out.expect_code(0)
        .expect_stdout("created alice@localhost (a deleted account's address)")
        .expect_stderr("perch: warning: alice@localhost belonged to an account deleted on ")
        .expect_stderr("take the new owner for the old one");
    assert!(
        server.wait_for_log(
            "admin: alice@localhost belonged to a deleted account and was given out again",
            IO_TIMEOUT
        ),
        "{}",
        server.log()
    );
    authenticate(server.c2s(), ("alice", "second-password")).expect("alice logs in");
    // Once reused, it is an account like any other.
    add(&["--reuse-deleted"], "third-password\n")
        .expect_code(1)
        .expect_stderr("account alice@localhost exists already");
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("stops");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn room_list_without_rooms_says_so() {
    let dir = TempDir::new("cli-first-rooms");
    let config = standard_config(&dir);
    let config_str = config.to_str().expect("UTF-8");
    create_database(&dir.path().join("data"));
    let out = cli(dir.path(), &["room", "list", "--config", config_str], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "no rooms\n", "{}", out.describe());
    let mut server = Server::start(&config);
    let out = cli(dir.path(), &["room", "list", "--config", config_str], None);
    out.expect_code(0);
    assert_eq!(out.stdout, "no rooms\n", "{}", out.describe());
    assert!(
        server.wait_for_log("INFO  admin: room list (0 listed)", IO_TIMEOUT),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("admin: \n"), "{}", server.log());
    server.signal(Signal::TERM);
    server.wait_exit(STOP_TIMEOUT).expect("stops");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_refuses_a_certificate_for_another_domain() {
    let dir = TempDir::new("cli-first-cert");
    let pair =
        rcgen::generate_simple_self_signed(vec!["other.example".to_string()]).expect("certificate");
    let cert = write_file(&dir.path().join("cert.pem"), &pair.cert.pem());
    let key = write_file(
        &dir.path().join("key.pem"),
        &pair.signing_key.serialize_pem(),
    );
    let with = |extra: &str| {
        let text = format!(
            "data_dir = {}\n[[host]]\ndomain = \"example.org\"\ncertificate = {}\nkey = {}\n{extra}",
            toml_path(&dir.path().join("data")),
            toml_path(&cert),
            toml_path(&key)
        );
        write_file(&dir.path().join("c.toml"), &text);
        cli(dir.path(), &["check", "--config", "c.toml"], None)
    };
    let out = with("");
    out.expect_code(2).expect_stderr(&format!(
        "perch: host example.org: the certificate {} does not name example.org, so clients will refuse to connect",
        cert.display()
    ));
    assert!(!out.stdout.contains(": valid"), "{}", out.describe());
    with("allow_mismatched_certificate = true\n")
        .expect_code(0)
        .expect_stdout("warning: the certificate does not cover example.org")
        .expect_stdout("configuration c.toml: valid");
}
