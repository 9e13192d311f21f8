use dccgw::domain::SmkiRole;
use dccgw::identity::identity_from_pem;
use dccgw::register::PartyRegister;

use super::*;

#[test]
fn prepares_a_pki_registers_and_a_configuration_the_gateway_loads() {
    let dir = tempfile::tempdir().unwrap();
    let wd = Workdir::new(dir.path());
    let pop = Population::new(500, 3);
    let now = OffsetDateTime::now_utc();
    prepare(&wd, &pop, now).unwrap();
    // Every User has a TLS client certificate in its organisation role and an XML-signing one;
    // suppliers and network operators a Digital Signing one in that role too.
    for user in &pop.users {
        let tls = identity_from_pem(&std::fs::read(wd.user(user, "tls.pem")).unwrap()).unwrap();
        assert_eq!((tls.user_id, tls.role), (user.id, user.tls_role()));
        let sign =
            identity_from_pem(&std::fs::read(wd.user(user, "xml-sign.pem")).unwrap()).unwrap();
        assert_eq!((sign.user_id, sign.role), (user.id, SmkiRole::XmlSigning));
        let ds = wd.user(user, "digital-signing.pem");
        assert_eq!(ds.exists(), user.signs_digitally(), "{}", user.name());
    }
    // A second prepare keeps what exists.
    let ca_before = std::fs::read(wd.pki("ca")).unwrap();
    prepare(&wd, &pop, now).unwrap();
    assert_eq!(std::fs::read(wd.pki("ca")).unwrap(), ca_before);

    write_users(&wd, &pop, "https://localhost:9444/").unwrap();
    let register =
        PartyRegister::parse(&std::fs::read_to_string(dir.path().join("users.csv")).unwrap())
            .unwrap();
    assert_eq!(register.len(), pop.users.len());
    let first = register.get(&pop.users[0].id).unwrap();
    assert_eq!(
        first.response_url.as_deref(),
        Some("https://localhost:9444/")
    );

    let path = write_gateway_config(
        &wd,
        &pop,
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        &format!(
            "[limits]\nmax_connections = 4096\n{}",
            in_process_routing_config(&wd).unwrap()
        ),
    )
    .unwrap();
    let config = dccgw::config::Config::load(&path, Vec::new()).unwrap();
    assert_eq!(config.limits.max_connections, 4096);
    // The gateway takes the Users' Digital Signing certificates: one per supplier and network
    // operator (92 in the synthetic registry's pools).
    let ds = config.signatures.digital_signing_certs.clone().unwrap();
    assert_eq!(std::fs::read_dir(&ds).unwrap().count(), 92);
    let first =
        identity_from_pem(&std::fs::read(ds.join(format!("{}.pem", pop.users[0].name()))).unwrap())
            .unwrap();
    assert_eq!(
        (first.user_id, first.role),
        (pop.users[0].id, pop.users[0].tls_role())
    );
    // Every User's lane connects from the generator's one address.
    assert!(config.limits.max_connections_per_source > pop.users.len());
    assert!(config.registration.devices.exists());
    assert!(config
        .signatures
        .user_certs
        .join(format!("{}.pem", pop.users[0].name()))
        .exists());
}
