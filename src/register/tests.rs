use super::*;

const HEADER: &str = "user_id,party_id,party_name,roles,status,response_url\n";

#[test]
fn parses_the_demo_shape() {
    let text = format!(
        "{HEADER}90-B3-D5-1F-30-01-00-00,SUP1,\"Supplier One, Ltd\",IS|GS,active,https://127.0.0.1:9/rrs\n\
         # a comment\n\
         00-DB-12-34-56-78-00-04,OU1,Other,OU,suspended:A|C,\n"
    );
    let reg = PartyRegister::parse(&text).unwrap();
    assert_eq!(reg.len(), 2);
    let sup = reg
        .get(&"90-B3-D5-1F-30-01-00-00".parse().unwrap())
        .unwrap();
    assert_eq!(sup.party_name, "Supplier One, Ltd");
    assert_eq!(
        sup.roles,
        vec![UserRole::ImportSupplier, UserRole::GasSupplier]
    );
    assert_eq!(sup.status, UserStatus::Active);
    let ou = reg
        .get(&"00-DB-12-34-56-78-00-04".parse().unwrap())
        .unwrap();
    assert_eq!(
        ou.status,
        UserStatus::Suspended(vec![EligibilityClass::A, EligibilityClass::C])
    );
    assert_eq!(ou.response_url, None);
}

#[test]
fn refuses_bad_rows_with_their_line() {
    let row = |r: &str| PartyRegister::parse(&format!("{HEADER}{r}\n"));
    let cases = [
        ("90-B3-D5-1F-30-01-00-00,P,N,IS,active", RowProblem::Shape),
        ("90-B3-D5-1F-30-01-00,P,N,IS,active,", RowProblem::UserId),
        ("90-B3-D5-1F-30-01-00-00,,N,IS,active,", RowProblem::PartyId),
        (
            "90-B3-D5-1F-30-01-00-00,P,N,IS|XX,active,",
            RowProblem::Roles,
        ),
        ("90-B3-D5-1F-30-01-00-00,P,N,,active,", RowProblem::Roles),
        (
            "90-B3-D5-1F-30-01-00-00,P,N,IS,sleeping,",
            RowProblem::Status,
        ),
        (
            "90-B3-D5-1F-30-01-00-00,P,N,IS,suspended:D,",
            RowProblem::Status,
        ),
    ];
    for (r, want) in cases {
        match row(r) {
            Err(RegisterError::Row { line: 2, problem }) => assert_eq!(problem, want, "{r}"),
            other => panic!("{r}: {other:?}"),
        }
    }
    let dup = "90-B3-D5-1F-30-01-00-00,P,N,IS,active,\n90-b3-d5-1f-30-01-00-00,P,N,GS,active,";
    assert!(matches!(
        row(dup),
        Err(RegisterError::Row {
            line: 3,
            problem: RowProblem::Duplicate
        })
    ));
}

#[test]
fn errors_name_the_column_and_a_wrong_header_the_right_one() {
    let text = format!("{HEADER}90-B3-D5-1F-30-01-00-00,P,N,IS,sleeping,\n");
    let e = PartyRegister::parse(&text).unwrap_err().to_string();
    assert!(e.contains("line 2, column 5 (status)"), "{e}");
    let e = PartyRegister::parse("user_id,party,name,roles,status,url\n").unwrap_err();
    assert!(
        matches!(&e, RegisterError::Header { found } if found == "user_id,party,name,roles,status,url"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("user_id,party_id,party_name,roles,status,response_url"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, &text).unwrap();
    let e = crate::state::load::users(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: users file line 2", path.display())),
        "{e}"
    );
}

mod user_changes {
    use super::*;
    use crate::certstore::{CertRefusal, CertStore};
    use crate::domain::UserId;
    use crate::state::load;
    use crate::store::{UserChangeLog, UserChangeLogError};

    const SUP: &str = "90-B3-D5-1F-30-01-00-00";
    const OU: &str = "00-DB-12-34-56-78-00-04";

    fn uid(s: &str) -> UserId {
        s.parse().unwrap()
    }

    fn register() -> PartyRegister {
        PartyRegister::parse(&format!(
            "{HEADER}{SUP},SUP1,Supplier,IS|GS,active,\n{OU},OU1,Other,OU,suspended:B,\n"
        ))
        .unwrap()
    }

    fn status(r: &PartyRegister, user: &str) -> UserStatus {
        r.get(&uid(user)).unwrap().status.clone()
    }

    fn json(change: &str) -> UserChange {
        serde_json::from_str(change).unwrap()
    }

    #[test]
    fn status_changes_in_turn() {
        use EligibilityClass::*;
        let certs = CertStore::default();
        let suspend_a = json(&format!(
            r#"{{"change":"suspend_user","user":"{SUP}","classes":["A"]}}"#
        ));
        let suspend_all = json(&format!(r#"{{"change":"suspend_user","user":"{SUP}"}}"#));
        let reinstate = json(&format!(r#"{{"change":"reinstate_user","user":"{SUP}"}}"#));
        let withdraw = json(&format!(r#"{{"change":"withdraw_user","user":"{SUP}"}}"#));
        let apply = |r: &PartyRegister, c: &UserChange| {
            apply_user_changes(r, &certs, std::slice::from_ref(c)).map(|(r, _)| r)
        };
        let r0 = register();
        let r1 = apply(&r0, &suspend_a).unwrap();
        assert_eq!(status(&r1, SUP), UserStatus::Suspended(vec![A]));
        assert_eq!(
            status(&r0, SUP),
            UserStatus::Active,
            "the old register is unchanged"
        );
        let r2 = apply(&r1, &suspend_all).unwrap();
        assert_eq!(status(&r2, SUP), UserStatus::Suspended(vec![A, B, C]));
        let r3 = apply(&r2, &reinstate).unwrap();
        assert_eq!(status(&r3, SUP), UserStatus::Active);
        assert_eq!(
            apply(&r3, &reinstate).unwrap_err(),
            UserChangeError::NotSuspended(uid(SUP))
        );
        let r4 = apply(&r3, &withdraw).unwrap();
        assert_eq!(status(&r4, SUP), UserStatus::Withdrawn);
        for c in [&suspend_a, &reinstate, &withdraw] {
            assert_eq!(
                apply(&r4, c).unwrap_err(),
                UserChangeError::Withdrawn(uid(SUP))
            );
        }
        let stranger = json(r#"{"change":"withdraw_user","user":"90-B3-D5-1F-30-09-00-00"}"#);
        assert_eq!(
            apply(&r0, &stranger).unwrap_err(),
            UserChangeError::UnknownUser(uid("90-B3-D5-1F-30-09-00-00"))
        );
        // A batch is all or nothing: the first change is not kept when the second fails.
        let batch = [withdraw.clone(), stranger];
        assert!(apply_user_changes(&r0, &certs, &batch).is_err());
        assert_eq!(status(&r0, SUP), UserStatus::Active);
        // The other User's suspension is untouched throughout.
        assert_eq!(status(&r4, OU), UserStatus::Suspended(vec![B]));
    }

    #[test]
    fn unknown_fields_and_classes_are_refused() {
        for bad in [
            r#"{"change":"suspend_user","user":"90-B3-D5-1F-30-01-00-00","classes":["D"]}"#,
            r#"{"change":"withdraw_user","user":"90-B3-D5-1F-30-01-00-00","why":"x"}"#,
            r#"{"change":"delete_user","user":"90-B3-D5-1F-30-01-00-00"}"#,
            r#"{"change":"withdraw_user","user":"not an id"}"#,
        ] {
            assert!(serde_json::from_str::<UserChange>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn certificates_are_checked_before_they_are_added() {
        let dir = tempfile::tempdir().unwrap();
        crate::pki::init(dir.path(), time::OffsetDateTime::now_utc()).unwrap();
        let anchors = std::sync::Arc::new(load::trust(&[dir.path().join("ca.pem")], &[]).unwrap());
        let empty = tempfile::tempdir().unwrap();
        let certs = load::certs(empty.path(), anchors).unwrap();
        let pem = |user: &str, file: &str| {
            std::fs::read_to_string(dir.path().join("users").join(user).join(file)).unwrap()
        };
        let add = |pem: String| UserChange::AddUserCertificate { pem };
        let r = register();

        let (_, with) =
            apply_user_changes(&r, &certs, &[add(pem("supplier", "xml-sign.pem"))]).unwrap();
        assert_eq!((certs.len(), with.len()), (0, 1));

        let refusal = |store: &CertStore, change: UserChange| {
            apply_user_changes(&r, store, &[change])
                .map(|_| ())
                .unwrap_err()
        };
        let certificate = UserChangeError::Certificate;
        assert_eq!(
            refusal(&with, add(pem("supplier", "xml-sign.pem"))),
            certificate(CertRefusal::Duplicate)
        );
        assert!(matches!(
            refusal(&certs, add(pem("supplier", "client.pem"))),
            UserChangeError::Certificate(CertRefusal::Role(_))
        ));
        assert_eq!(
            refusal(&certs, add("not a certificate".into())),
            certificate(CertRefusal::NotOnePem)
        );
        let two = pem("supplier", "xml-sign.pem") + &pem("supplier2", "xml-sign.pem");
        assert_eq!(
            refusal(&certs, add(two)),
            certificate(CertRefusal::NotOnePem)
        );
        // The network operator's certificate is good, but the register does not know the User.
        assert!(matches!(
            refusal(&certs, add(pem("network-operator", "xml-sign.pem"))),
            UserChangeError::UnknownUser(_)
        ));
        // Without the trust anchor it does not chain.
        let untrusted = load::certs(empty.path(), Default::default()).unwrap();
        assert_eq!(
            refusal(&untrusted, add(pem("supplier", "xml-sign.pem"))),
            certificate(CertRefusal::Untrusted)
        );
    }

    #[tokio::test]
    async fn the_log_replays_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user-changes.journal");
        let certs = CertStore::default();
        let replayed =
            UserChangeLog::open_and_replay(&path, register(), certs.clone(), Default::default())
                .unwrap();
        let (log, r) = (replayed.log, replayed.register);
        assert_eq!(status(&r, SUP), UserStatus::Active);
        let suspend = json(&format!(r#"{{"change":"suspend_user","user":"{SUP}"}}"#));
        let withdraw = json(&format!(r#"{{"change":"withdraw_user","user":"{OU}"}}"#));
        log.append(std::slice::from_ref(&suspend)).await.unwrap();
        log.append(std::slice::from_ref(&withdraw)).await.unwrap();
        drop(log);
        let r =
            UserChangeLog::open_and_replay(&path, register(), certs.clone(), Default::default())
                .unwrap()
                .register;
        assert!(matches!(status(&r, SUP), UserStatus::Suspended(_)));
        assert_eq!(status(&r, OU), UserStatus::Withdrawn);
        // A register without the User the log names stops the start.
        let without = PartyRegister::parse(&format!("{HEADER}{SUP},SUP1,S,IS,active,\n")).unwrap();
        assert!(matches!(
            UserChangeLog::open_and_replay(&path, without, certs, Default::default()),
            Err(UserChangeLogError::Replay { index: 1, .. })
        ));
    }
}
