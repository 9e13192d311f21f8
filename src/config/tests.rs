use super::*;

const BASE: &str = r#"
[listen]
addr = "127.0.0.1:8443"
admin_addr = "127.0.0.1:9090"

[tls]
cert = "server.pem"
key = "server.key.pem"
client_ca = ["ca.pem"]

[registration]
users = "users.csv"
devices = "devices.csv"
registrations = "registrations.csv"

[signatures]
dcc_key = "dcc-xml-sign.key.pem"
dcc_cert = "dcc-xml-sign.pem"
user_certs = "user-certs"
trust_anchors = ["ca.pem"]

[state]
dir = "state"

[routing]
acb_key = "dcc-acb.key.pem"
acb_cert = "dcc-acb.pem"

[delivery.transport]
client_cert = "dcc-acb.pem"
client_key = "dcc-acb.key.pem"
trust_anchors = ["ca.pem"]
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_apply_when_limits_are_absent() {
    let c = Config::from_toml(BASE, env(&[])).unwrap();
    assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(c.listen.addr.port(), 8443);
}

#[test]
fn environment_overrides_keys_and_ignores_other_variables() {
    let c = Config::from_toml(
        BASE,
        env(&[
            ("DCCGW_LIMITS__MAX_BODY_BYTES", "2048"),
            ("DCCGW_LISTEN__ADDR", "127.0.0.1:0"),
            ("DCCGW_ANCHORS", "/elsewhere"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.limits.max_body_bytes, 2048);
    assert_eq!(c.listen.addr.port(), 0);
}

#[test]
fn misspelt_keys_fail() {
    let misspelt = BASE.replace("admin_addr", "admin_adr");
    assert!(matches!(
        Config::from_toml(&misspelt, env(&[])),
        Err(FromTomlError::Toml(_))
    ));
    assert!(matches!(
        Config::from_toml(BASE, env(&[("DCCGW_LIMITS__MAX_BODY_BYTE", "1")])),
        Err(FromTomlError::Toml(_))
    ));
    assert!(matches!(
        Config::from_toml(BASE, env(&[("DCCGW_LIMITS____X", "1")])),
        Err(FromTomlError::Env(_))
    ));
    assert!(matches!(
        Config::from_toml(BASE, env(&[("DCCGW_LIMITS__MAX_BODY_BYTES", "many")])),
        Err(FromTomlError::Toml(_))
    ));
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dccgw.toml");
    std::fs::write(&path, BASE).unwrap();
    let c = Config::load(&path, env(&[])).unwrap();
    assert_eq!(c.tls.cert, dir.path().join("server.pem"));
    assert_eq!(c.registration.users, dir.path().join("users.csv"));
}

#[test]
fn the_audit_section_defaults_and_takes_targets() {
    let c = Config::from_toml(BASE, env(&[])).unwrap();
    assert_eq!(c.audit.dir(&c.state), PathBuf::from("state/audit"));
    assert!(c.audit.rotation().daily);
    assert_eq!(c.audit.targets.target_ms(&"4.1.1".parse().unwrap()), 25_000);

    let text = format!(
        "{BASE}\n[audit]\ndir = \"trail\"\nmax_file_bytes = 10\nrotate_daily = false\n\
         [audit.targets]\ndefault_seconds = 30\nby_srv = {{ \"11\" = 60, \"4.1.1\" = 20 }}\n"
    );
    let c = Config::from_toml(&text, env(&[])).unwrap();
    assert_eq!(c.audit.dir(&c.state), PathBuf::from("trail"));
    assert_eq!(c.audit.rotation().max_file_bytes, 64 * 1024);
    assert!(!c.audit.rotation().daily);
    assert_eq!(c.audit.targets.target_ms(&"11.2".parse().unwrap()), 60_000);
    assert_eq!(c.audit.targets.target_ms(&"4.1.1".parse().unwrap()), 20_000);
    assert_eq!(c.audit.targets.target_ms(&"4.2".parse().unwrap()), 30_000);
    let misspelt = format!("{BASE}\n[audit]\nmax_file_byte = 10\n");
    assert!(Config::from_toml(&misspelt, env(&[])).is_err());
}
