//! Version, help, usage errors, `perch check` and the configuration lookup.

use std::path::Path;

use perch::testing::TempDir;

use crate::harness::*;

// ---------------------------------------------------------------------------
// 1. Version, help, usage errors.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn version_prints_name_and_version() {
    let dir = TempDir::new("cli-version");
    let expected = format!("perch {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V", "version"] {
        let out = cli(dir.path(), &[flag], None);
        out.expect_code(0);
        assert_eq!(out.stdout, expected, "perch {flag}; {}", out.describe());
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn help_lists_commands() {
    let dir = TempDir::new("cli-help");
    for args in [&["--help"][..], &["help"][..]] {
        let out = cli(dir.path(), args, None);
        out.expect_code(0);
        for command in ["run", "check", "user"] {
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(command)),
                "perch {args:?} should list the {command} command; {}",
                out.describe()
            );
        }
        out.expect_stdout("--config FILE");
        // The documented exit codes are part of the help.
        out.expect_stdout("3 the database is in use");
    }

    let out = cli(dir.path(), &["user", "--help"], None);
    out.expect_code(0);
    for action in ["add", "del", "passwd", "list"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(action)),
            "perch user --help should list {action}; {}",
            out.describe()
        );
    }

    let out = cli(dir.path(), &["user", "add", "--help"], None);
    out.expect_code(0)
        .expect_stdout("Usage: perch user add")
        .expect_stdout("--password-stdin")
        .expect_stdout("--config")
        .expect_stdout("<jid>");

    for cmd in ["run", "check"] {
        let out = cli(dir.path(), &[cmd, "--help"], None);
        out.expect_code(0)
            .expect_stdout(&format!("Usage: perch {cmd}"))
            .expect_stdout("--config");
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn unknown_subcommand_fails_with_message() {
    let dir = TempDir::new("cli-unknown");
    let out = cli(dir.path(), &["frobnicate"], None);
    assert!(
        !out.status.success(),
        "an unknown command must fail; {}",
        out.describe()
    );
    out.expect_stderr("frobnicate").expect_stderr("--help");
    // Nothing was created in the working directory.
    assert!(!dir.path().join("perch-data").exists());
}

/// README and `perch --help` document exit code 2 for "the configuration or
/// an argument is invalid"; command-line usage errors should use it too.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn usage_errors_exit_with_documented_code_2() {
    let dir = TempDir::new("cli-usage");
    let mut failures = Vec::new();
    for args in [
        &["frobnicate"][..],
        &[][..],
        &["user"][..],
        &["user", "add"][..],
        &["check", "--no-such-option"][..],
        &["run", "--config"][..],
    ] {
        let out = cli(dir.path(), args, None);
        assert!(
            !out.status.success() && !out.stderr.trim().is_empty(),
            "perch {args:?} must fail with a message; {}",
            out.describe()
        );
        if out.code() != Some(2) {
            failures.push(format!("perch {args:?}: {}", out.describe()));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid arguments should exit 2 as documented:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 2. perch check.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_good_config_prints_what_would_run() {
    let dir = TempDir::new("cli-check-good");
    let data = dir.path().join("data");
    // `admins` is a top-level key, so it goes before the first table.
    let text = server_config(&data, 0).replacen(
        "log_level = \"info\"\n",
        "log_level = \"info\"\nadmins = [\"boss@localhost\"]\n",
        1,
    ) + "\n[[host]]\ndomain = \"example.org\"\nmuc = \"\"\n\n\
         [[listener]]\nkind = \"c2s-tls\"\naddress = \"::1\"\nport = 0\n";
    let config = write_file(&dir.path().join("good.toml"), &text);
    let out = cli(
        dir.path(),
        &["check", "--config", config.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0)
        .expect_stdout(&format!("configuration {}: valid", config.display()))
        .expect_stdout(
            "host localhost (chat rooms: conference.localhost, pubsub: pubsub.localhost)",
        )
        .expect_stdout("host example.org (chat rooms: disabled, pubsub: pubsub.example.org)")
        .expect_stdout(&format!(
            "certificate: self-signed, kept in {}",
            data.join("tls").display()
        ))
        .expect_stdout("listen c2s (clients, STARTTLS) on 127.0.0.1:0")
        .expect_stdout("listen c2s-tls (clients, direct TLS) on [::1]:0")
        .expect_stdout(&format!("data: {}", data.join("perch.redb").display()))
        .expect_stdout("admins: boss@localhost");
    // Its only problem is the test setting of passwords in plain text:
    // a warning, not a failure.
    assert_eq!(
        out.stderr.trim(),
        "perch: warning: c2s: require_encryption = false with allow_plaintext_auth = true lets passwords cross the network unencrypted; keep it to tests on one machine and set require_encryption = true otherwise",
        "{}",
        out.describe()
    );
    // check only reads: it creates neither the data directory nor a database.
    assert!(!data.exists(), "perch check created {}", data.display());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_compliance_reports_levels_and_names_what_is_missing() {
    let dir = TempDir::new("cli-check-compliance");
    let data = dir.path().join("data");
    // Only a c2s listener: no component, web or direct-TLS listener.
    let bare = write_file(&dir.path().join("bare.toml"), &server_config(&data, 0));
    let out = cli(
        dir.path(),
        &["check", "--compliance", "-c", bare.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0)
        .expect_stdout("XMPP Compliance Suites 2023 (XEP-0479), server columns, for this configuration")
        .expect_stdout("  Core         not compliant (for Server: Server extensibility)")
        .expect_stdout("  Web          not compliant (for Server: Server extensibility, Web connection mechanisms)")
        .expect_stdout("(no c2s-tls listener: add a [[listener]] kind = \"c2s-tls\" (port 5223))");
    // Everything a configuration can switch on.
    let full = server_config(&data, 0)
        + "\n[[listener]]\nkind = \"c2s-tls\"\naddress = \"127.0.0.1\"\nport = 0\n\
           \n[[listener]]\nkind = \"component\"\naddress = \"127.0.0.1\"\nport = 0\n\
           \n[[listener]]\nkind = \"http\"\naddress = \"127.0.0.1\"\nport = 0\n\
           \n[[external_service]]\ntype = \"stun\"\nhost = \"turn.example.org\"\nport = 3478\n";
    let full = write_file(&dir.path().join("full.toml"), &full);
    let out = cli(
        dir.path(),
        &["check", "--compliance", "-c", full.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0)
        .expect_stdout("  Core         Advanced Server")
        .expect_stdout("  Web          Advanced Server")
        .expect_stdout("  IM           Advanced Server")
        .expect_stdout("  Mobile       Advanced Server")
        .expect_stdout("  A/V Calling  Advanced Server");
    // Without the switch, no report.
    let out = cli(
        dir.path(),
        &["check", "-c", full.to_str().expect("UTF-8")],
        None,
    );
    out.expect_code(0);
    assert!(!out.stdout.contains("XEP-0479"), "{}", out.describe());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_unknown_key_names_file_line_and_key() {
    let dir = TempDir::new("cli-check-key");
    let config = write_file(
        &dir.path().join("typo.toml"),
        "log_level = \"info\"\n\n[[listener]]\nkind = \"c2s\"\nprot = 5222\n",
    );
    let out = cli(dir.path(), &["check", "--config", "typo.toml"], None);
    out.expect_code(2)
        .expect_stderr("typo.toml:5: unknown key 'prot' in [[listener]]")
        .expect_stderr("expected one of: kind, address, port");
    assert!(config.exists());

    // Top level, reported with the same shape.
    write_file(&dir.path().join("top.toml"), "loglevel = \"info\"\n");
    cli(dir.path(), &["check", "--config", "top.toml"], None)
        .expect_code(2)
        .expect_stderr("top.toml:1: unknown key 'loglevel' at top level");

    // `perch run` refuses the same file with the same message, before
    // creating anything.
    let out = cli(dir.path(), &["run", "--config", "typo.toml"], None);
    out.expect_code(2)
        .expect_stderr("typo.toml:5: unknown key 'prot' in [[listener]]");
    assert!(!dir.path().join("perch-data").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_bad_values_exit_2() {
    let dir = TempDir::new("cli-check-value");
    write_file(&dir.path().join("loud.toml"), "log_level = \"loud\"\n");
    cli(dir.path(), &["check", "--config", "loud.toml"], None)
        .expect_code(2)
        .expect_stderr("loud.toml:1: log_level")
        .expect_stderr("loud");

    // Several bad values: each is reported with its line.
    write_file(
        &dir.path().join("many.toml"),
        "[[listener]]\nkind = \"c2s\"\nport = 70000\n\n[limits]\nmax_stanza_bytes = 5\n",
    );
    let out = cli(dir.path(), &["check", "--config", "many.toml"], None);
    out.expect_code(2)
        .expect_stderr("many.toml:3: listener.port")
        .expect_stderr("70000")
        .expect_stderr("many.toml:6: limits.max_stanza_bytes");

    // Not TOML at all.
    write_file(&dir.path().join("syntax.toml"), "log_level = \n");
    cli(dir.path(), &["check", "--config", "syntax.toml"], None)
        .expect_code(2)
        .expect_stderr("syntax.toml:1:");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn missing_config_file_exits_2() {
    let dir = TempDir::new("cli-check-missing");
    let missing = dir.path().join("nope.toml");
    let missing_str = missing.to_str().expect("UTF-8");
    for cmd in [
        &["check", "--config", missing_str][..],
        &["run", "--config", missing_str][..],
        &["user", "list", "--config", missing_str][..],
    ] {
        let out = cli(dir.path(), cmd, None);
        out.expect_code(2)
            .expect_stderr(&format!("cannot read {}", missing.display()))
            .expect_stderr("No such file or directory");
    }
    // No built-in defaults were used instead.
    assert!(!dir.path().join("perch-data").exists());
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_verifies_certificate_files() {
    let dir = TempDir::new("cli-check-cert");
    let data = dir.path().join("data");
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a certificate");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a second certificate");
    let cert = write_file(&dir.path().join("cert.pem"), &pair.cert.pem());
    let key = write_file(
        &dir.path().join("key.pem"),
        &pair.signing_key.serialize_pem(),
    );
    let other_key = write_file(
        &dir.path().join("other-key.pem"),
        &other.signing_key.serialize_pem(),
    );
    let with_files = |name: &str, cert: &Path, key: &Path| -> Output {
        let text = server_config(&data, 0).replacen(
            "domain = \"localhost\"\n",
            &format!(
                "domain = \"localhost\"\ncertificate = {}\nkey = {}\n",
                toml_path(cert),
                toml_path(key)
            ),
            1,
        );
        write_file(&dir.path().join(name), &text);
        cli(dir.path(), &["check", "--config", name], None)
    };

    // A matching pair.
    with_files("ok.toml", &cert, &key)
        .expect_code(0)
        .expect_stdout(&format!(
            "certificate {}: key matches, 1 certificate in chain, valid until ",
            cert.display()
        ));

    // A certificate that does not exist.
    let no_cert = dir.path().join("no-such-cert.pem");
    let out = with_files("no-cert.toml", &no_cert, &key);
    out.expect_code(2)
        .expect_stderr(&no_cert.display().to_string())
        .expect_stderr("does not exist");

    // A key that does not exist.
    let no_key = dir.path().join("no-such-key.pem");
    let out = with_files("no-key.toml", &cert, &no_key);
    out.expect_code(2)
        .expect_stderr(&no_key.display().to_string());

    // A key that belongs to another certificate.
    let out = with_files("mismatch.toml", &cert, &other_key);
    out.expect_code(2);
    assert!(
        !out.stderr.trim().is_empty(),
        "a mismatched key needs an explanation; {}",
        out.describe()
    );

    // `perch run` refuses a missing certificate too, with the documented
    // configuration exit code, and does not start listening.
    let out = cli(dir.path(), &["run", "--config", "no-cert.toml"], None);
    out.expect_code(2)
        .expect_stderr(&no_cert.display().to_string());
    assert!(!data.join("admin.sock").exists());
}

/// `perch check` reports a certificate problem on stderr; stdout should not
/// claim the configuration is valid in the same breath.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn check_with_certificate_problem_does_not_say_valid() {
    let dir = TempDir::new("cli-check-valid");
    let text = server_config(&dir.path().join("data"), 0).replacen(
        "domain = \"localhost\"\n",
        "domain = \"localhost\"\ncertificate = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        1,
    );
    write_file(&dir.path().join("c.toml"), &text);
    let out = cli(dir.path(), &["check", "--config", "c.toml"], None);
    out.expect_code(2).expect_stderr("/nonexistent/cert.pem");
    assert!(
        !out.stdout.contains(": valid"),
        "check exits 2 but prints that the configuration is valid; {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// Configuration lookup without --config.

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn config_lookup_order() {
    let dir = TempDir::new("cli-lookup");
    let env_data = dir.path().join("env-data");
    let env_config = write_file(&dir.path().join("env.toml"), &server_config(&env_data, 0));
    let sysd = dir.path().join("etc");
    std::fs::create_dir_all(&sysd).expect("mkdir");
    let sysd_data = dir.path().join("systemd-data");
    write_file(&sysd.join("perch.toml"), &server_config(&sysd_data, 0));
    let explicit_data = dir.path().join("explicit-data");
    write_file(
        &dir.path().join("explicit.toml"),
        &server_config(&explicit_data, 0),
    );
    let state = dir.path().join("state");

    let check = |envs: &[(&str, &Path)], args: &[&str]| -> Output {
        let mut cmd = perch(dir.path());
        cmd.arg("check").args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_within(cmd, None, CLI_TIMEOUT)
    };
    let db = |d: &Path| format!("data: {}", d.join("perch.redb").display());

    // Nothing: built-in defaults, data in ~/.local/share/perch, or in
    // $XDG_DATA_HOME/perch when that is set.
    check(&[], &[])
        .expect_code(0)
        .expect_stdout("no configuration file: built-in defaults")
        .expect_stdout(&db(&default_data_of(dir.path())))
        .expect_stdout("listen c2s (clients, STARTTLS) on 127.0.0.1:5222")
        .expect_stdout("listen c2s-tls (clients, direct TLS) on 127.0.0.1:5223");
    let xdg = dir.path().join("xdg");
    check(&[("XDG_DATA_HOME", &xdg)], &[])
        .expect_code(0)
        .expect_stdout(&db(&xdg.join("perch")));
    // $STATE_DIRECTORY moves the default data directory.
    check(&[("STATE_DIRECTORY", &state)], &[])
        .expect_code(0)
        .expect_stdout(&db(&state));
    // $CONFIGURATION_DIRECTORY/perch.toml is read when it exists.
    check(&[("CONFIGURATION_DIRECTORY", &sysd)], &[])
        .expect_code(0)
        .expect_stdout(&db(&sysd_data));
    // $PERCH_CONFIG wins over $CONFIGURATION_DIRECTORY.
    check(
        &[
            ("CONFIGURATION_DIRECTORY", &sysd),
            ("PERCH_CONFIG", &env_config),
        ],
        &[],
    )
    .expect_code(0)
    .expect_stdout(&format!("configuration {}: valid", env_config.display()))
    .expect_stdout(&db(&env_data));
    // --config wins over both.
    check(
        &[
            ("CONFIGURATION_DIRECTORY", &sysd),
            ("PERCH_CONFIG", &env_config),
        ],
        &["--config", "explicit.toml"],
    )
    .expect_code(0)
    .expect_stdout(&db(&explicit_data));
    // A $PERCH_CONFIG naming a missing file is an error, not the defaults.
    check(&[("PERCH_CONFIG", &dir.path().join("gone.toml"))], &[])
        .expect_code(2)
        .expect_stderr("gone.toml");
}

// ---------------------------------------------------------------------------
// 3. perch user … without a running server.
