use super::*;

const JUNE: i64 = 1_782_432_000; // 2026-06-26T00:00:00Z

fn book() -> RuleBook {
    RuleBook::new(RuleSet::base(Catalogue::builtin().clone(), Vec::new()))
}

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

fn june_release() -> RuleFile {
    RuleFile::parse(
        r#"{"version": "2026-06-release", "effective_from": "2026-06-26T00:00:00Z",
            "srvs": {"4.1.1": {"roles": ["IS", "GS"], "on_demand": false}},
            "alert_routes": [{"codes": "8F66", "to": "both"}]}"#,
    )
    .unwrap()
}

#[test]
fn a_version_is_in_force_from_its_instant_and_the_one_before_until_then() {
    let b = book();
    let next = b.check(&june_release(), JUNE - 86_400, false).unwrap();
    let b = b.with(next);
    let before = b.in_force(JUNE - 1);
    let after = b.in_force(JUNE);
    assert_eq!(before.version, BASE_VERSION);
    assert_eq!(after.version, "2026-06-release");
    let read = srv("4.1.1");
    assert!(before
        .catalogue
        .get(&read)
        .unwrap()
        .eligible(UserRole::ElectricityDistributor));
    assert!(!after
        .catalogue
        .get(&read)
        .unwrap()
        .eligible(UserRole::ElectricityDistributor));
    assert!(!after.catalogue.get(&read).unwrap().on_demand);
    assert_eq!(
        after.alert_table.audience(0x8F66),
        crate::alerts::Audience::Both
    );
    assert_eq!(
        before.alert_table.audience(0x8F66),
        crate::alerts::Audience::Supplier
    );
    assert_eq!(b.in_force(i64::MIN).version, BASE_VERSION);
    assert_eq!(b.in_force(i64::MAX).version, "2026-06-release");
}

#[test]
fn a_version_must_be_new_ahead_of_now_after_the_latest_and_apply() {
    let b = book();
    let file = june_release();
    // Not ahead of now (unless replayed from the journal).
    assert!(matches!(
        b.check(&file, JUNE, false),
        Err(RulesError::NotAhead { .. })
    ));
    assert!(b.check(&file, JUNE, true).is_ok());
    let b = b.with(b.check(&file, 0, false).unwrap());
    // The same name again, or an instant not after the latest.
    assert!(matches!(
        b.check(&file, 0, false),
        Err(RulesError::Version(_))
    ));
    let mut earlier = file.clone();
    earlier.version = "earlier".into();
    earlier.effective_from = "2026-06-01T00:00:00Z".into();
    assert!(matches!(
        b.check(&earlier, 0, false),
        Err(RulesError::NotAfterLatest { .. })
    ));
    // Changes that do not apply.
    let later = |json: &str| {
        let mut f = RuleFile::parse(json).unwrap();
        f.effective_from = "2026-12-01T00:00:00Z".into();
        b.check(&f, 0, false)
    };
    assert!(matches!(
        later(r#"{"version": "x", "effective_from": "", "srvs": {"99.9": {"on_demand": true}}}"#),
        Err(RulesError::UnknownSrv(_))
    ));
    assert!(matches!(
        later(
            r#"{"version": "x", "effective_from": "", "srvs": {"4.1.1": {"command_variants": []}}}"#
        ),
        Err(RulesError::Entry { .. })
    ));
    assert!(matches!(
        later(r#"{"version": "x", "effective_from": ""}"#),
        Err(RulesError::Empty)
    ));
    assert!(matches!(
        RuleFile::parse(r#"{"version": "x", "effective_from": "", "sevrs": {}}"#),
        Err(RulesError::Json(_))
    ));
    let mut bad_time = june_release();
    bad_time.version = "y".into();
    bad_time.effective_from = "soon".into();
    assert!(matches!(
        b.check(&bad_time, 0, false),
        Err(RulesError::EffectiveFrom(_))
    ));
}

#[test]
fn the_difference_names_each_changed_field() {
    let b = book();
    let next = b.check(&june_release(), 0, false).unwrap();
    let changes: Vec<String> = diff(b.latest(), &next)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        [
            "4.1.1 roles: [IS, GS, ED, GT] -> [IS, GS]".to_owned(),
            "4.1.1 on_demand: true -> false".to_owned(),
            "alert routes: [] -> [8F66 to both]".to_owned(),
        ]
    );
}

#[test]
fn a_book_holds_at_most_its_bound_of_versions() {
    let mut b = book();
    let mut file = june_release();
    for n in 1..MAX_VERSIONS {
        file.version = format!("v{n}");
        file.effective_from = format!("{}-01-01T00:00:00Z", 2030 + n);
        b = b.with(b.check(&file, 0, false).unwrap());
    }
    assert_eq!(b.versions().count(), MAX_VERSIONS);
    file.version = "one-more".into();
    file.effective_from = "9999-01-01T00:00:00Z".into();
    assert!(matches!(b.check(&file, 0, false), Err(RulesError::TooMany)));
}
