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

fn from_toml(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("dccgw.toml"), text, env)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_apply_when_limits_are_absent() {
    let c = from_toml(BASE, env(&[])).unwrap();
    assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(c.listen.addr.port(), 8443);
}

#[test]
fn environment_overrides_keys_and_ignores_other_variables() {
    let c = from_toml(
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
        from_toml(&misspelt, env(&[])),
        Err(ConfigError::File { .. })
    ));
    assert!(matches!(
        from_toml(BASE, env(&[("DCCGW_LIMITS__MAX_BODY_BYTE", "1")])),
        Err(ConfigError::Env { .. })
    ));
    assert!(matches!(
        from_toml(BASE, env(&[("DCCGW_LIMITS____X", "1")])),
        Err(ConfigError::Env { .. })
    ));
    assert!(matches!(
        from_toml(BASE, env(&[("DCCGW_LIMITS__MAX_BODY_BYTES", "many")])),
        Err(ConfigError::Env { .. })
    ));
}

/// A mistake in the file is named by its line and column; one in the environment by the
/// variable's name, never as a fault of the file.
#[test]
fn errors_say_where_the_mistake_is() {
    let misspelt = BASE.replace("admin_addr", "admin_adr");
    let line = BASE
        .lines()
        .position(|l| l.starts_with("admin_addr"))
        .unwrap()
        + 1;
    match from_toml(&misspelt, env(&[])) {
        Err(ConfigError::File {
            line: l,
            column,
            key,
            message,
            ..
        }) => {
            assert_eq!((l, column), (line, 1), "{message}");
            assert_eq!(key, "listen.admin_adr");
            assert!(message.contains("admin_adr"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let wrong_type = BASE.replace("dir = \"state\"", "dir = 5");
    let line = BASE.lines().position(|l| l.starts_with("dir = ")).unwrap() + 1;
    let e = from_toml(&wrong_type, env(&[])).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "dccgw.toml, line {line}, column 1 (key state.dir)"
        )),
        "{e}"
    );
    let syntax = BASE.replace("[state]", "[state");
    let line = BASE.lines().position(|l| l == "[state]").unwrap() + 1;
    assert!(
        matches!(from_toml(&syntax, env(&[])), Err(ConfigError::File { line: l, .. }) if l == line)
    );
    let e = from_toml(BASE, env(&[("DCCGW_LIMITS__MAX_BODY_BYTES", "many")])).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("DCCGW_LIMITS__MAX_BODY_BYTES"), "{text}");
    assert!(text.contains("limits.max_body_bytes"), "{text}");
    assert!(!text.contains("dccgw.toml"), "{text}");
    let e = from_toml(BASE, env(&[("DCCGW_LISTEN__ADDR__PORT", "1")])).unwrap_err();
    assert!(e.to_string().contains("DCCGW_LISTEN__ADDR__PORT"), "{e}");
}

/// The reference lists every key of every section with its default, and `docs/configuration.md`
/// is that reference as generated now.
#[test]
fn the_reference_lists_every_key_and_the_docs_match_it() {
    let keys = reference::keys();
    let find = |k: &str| {
        keys.iter()
            .find(|d| d.key == k)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(
        find("limits.max_body_bytes").default.as_deref(),
        Some("1048576")
    );
    assert!(find("listen.addr").required);
    assert!(!find("admin.token_file").required);
    assert_eq!(
        find("delivery.outbox.first_retry_ms").bound.as_deref(),
        Some("1 to 300000")
    );
    assert_eq!(
        find("delivery.transport.connect_timeout_ms")
            .default
            .as_deref(),
        Some("10000")
    );
    assert_eq!(find("alerts.throttle.burst").default.as_deref(), Some("20"));
    assert_eq!(
        find("routing.hub").default.as_deref(),
        Some("\"in_process\"")
    );
    assert!(
        keys.iter().all(|k| !k.description.is_empty()),
        "{:?}",
        keys.iter()
            .filter(|k| k.description.is_empty())
            .map(|k| &k.key)
            .collect::<Vec<_>>()
    );
    // Every default the reference prints is the one the gateway applies.
    let defaults = reference::defaults_toml();
    let filled = format!("{BASE}\n{}", defaults_for_optional_sections(&defaults));
    from_toml(&filled, env(&[])).expect("the printed defaults parse as a configuration");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let written = std::fs::read_to_string(&docs).unwrap_or_default();
    assert!(
        written == reference::markdown(),
        "docs/configuration.md is not the generated reference: run \
         `cargo run -- config defaults --markdown > docs/configuration.md`"
    );
}

/// The printed defaults of the sections BASE leaves out (`limits`, `audit`, `alerts`, …).
fn defaults_for_optional_sections(defaults: &str) -> String {
    let given = [
        "listen",
        "tls",
        "registration",
        "signatures",
        "state",
        "routing",
        "delivery",
    ];
    let mut out = String::new();
    let mut keep = false;
    for line in defaults.lines() {
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("");
            let top = name.split('.').next().unwrap_or("");
            keep = !given.contains(&top);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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
    let c = from_toml(BASE, env(&[])).unwrap();
    assert_eq!(c.audit.dir(&c.state), PathBuf::from("state/audit"));
    assert!(c.audit.rotation().daily);
    assert_eq!(c.audit.targets.target_ms(&"4.1.1".parse().unwrap()), 25_000);

    let text = format!(
        "{BASE}\n[audit]\ndir = \"trail\"\nmax_file_bytes = 10\nrotate_daily = false\n\
         [audit.targets]\ndefault_seconds = 30\nby_srv = {{ \"11\" = 60, \"4.1.1\" = 20 }}\n"
    );
    let c = from_toml(&text, env(&[])).unwrap();
    assert_eq!(c.audit.dir(&c.state), PathBuf::from("trail"));
    assert_eq!(c.audit.rotation().max_file_bytes, 64 * 1024);
    assert!(!c.audit.rotation().daily);
    assert_eq!(c.audit.targets.target_ms(&"11.2".parse().unwrap()), 60_000);
    assert_eq!(c.audit.targets.target_ms(&"4.1.1".parse().unwrap()), 20_000);
    assert_eq!(c.audit.targets.target_ms(&"4.2".parse().unwrap()), 30_000);
    let misspelt = format!("{BASE}\n[audit]\nmax_file_byte = 10\n");
    assert!(from_toml(&misspelt, env(&[])).is_err());
}

/// The image and its example configuration fit together: the example parses; the health check
/// probes the admin port the example listens on; the state lives in the volume the image makes
/// and owns; the dependency layer is built from the manifests before the sources are copied.
#[test]
fn the_container_image_and_its_example_configuration_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let c = from_toml(&read("deploy/container/dccgw.toml"), env(&[])).unwrap();
    let docker = read("Dockerfile");
    let admin = c.listen.admin_addr;
    assert!(admin.ip().is_unspecified() && c.listen.addr.ip().is_unspecified());
    assert!(docker.contains("HEALTHCHECK"));
    assert!(
        docker.contains(&format!("http://127.0.0.1:{}/readyz", admin.port())),
        "the health check does not probe the admin port"
    );
    assert!(docker.contains(&format!("EXPOSE {} {}", c.listen.addr.port(), admin.port())));
    assert!(c.state.dir.starts_with("/var/lib/dccgw"));
    assert!(docker.contains("VOLUME [\"/var/lib/dccgw\"]"));
    assert!(docker.contains("mkdir -p /var/lib/dccgw"));
    assert!(docker.contains("chown dccgw:dccgw /var/lib/dccgw"));
    let manifests = docker.find("COPY Cargo.toml Cargo.lock").unwrap();
    assert!(manifests < docker.find("COPY . .").unwrap());
    assert!(docker.contains("COPY deploy/container/dccgw.toml"));
}
