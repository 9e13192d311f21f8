use super::*;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

const BASE: &str = r#"
name = "t"
description = "d"
[population]
devices = 1000
other_users = 2
[load]
kind = "constant"
rate = 10.0
duration_s = 2.0
"#;

fn with_mix(mix: &str) -> String {
    format!("{BASE}\n[[mix]]\n{mix}\n")
}

fn check_error(text: &str) -> ScenarioError {
    match Scenario::parse(text) {
        Err(ParseFailure::Check(e)) => e,
        Err(ParseFailure::Toml(e)) => panic!("TOML error instead of a check: {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn every_shipped_scenario_parses_and_checks() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(s.load.requests() > 0.0);
            names.push(s.name);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "alert-storm",
            "daily-read-burst",
            "handshake-heavy",
            "overload-2x",
            "registry-30m",
            "steady-state"
        ]
    );
}

#[test]
fn the_steady_mix_is_sixty_percent_meter_reads() {
    let s = Scenario::load(&scenarios_dir().join("steady-state.toml")).unwrap();
    let total: u32 = s.mix.iter().map(|m| m.weight).sum();
    let share = |name: &str| {
        s.mix
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.weight)
            .sum::<u32>() as f64
            / f64::from(total)
    };
    assert!((share("meter-read") - 0.60).abs() < 1e-9);
    assert!((share("non-device") - 0.15).abs() < 1e-9);
    assert!((share("alert-heavy") - 0.10).abs() < 1e-9);
    // Meter reads use Command Variants 1, 2 and 3; non-device ones 8.
    let cvs: std::collections::BTreeSet<u8> = s
        .mix
        .iter()
        .filter(|m| m.name == "meter-read")
        .map(|m| m.cv.get())
        .collect();
    assert_eq!(cvs.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(s
        .mix
        .iter()
        .filter(|m| m.name == "non-device")
        .all(|m| m.non_device() && m.cv.get() == 8));
    assert!(s.bench.find_saturation);
    assert_eq!(s.bench.fractions, [0.5, 0.9]);
    assert_eq!((s.bench.soak_s, s.bench.soak_fraction), (600.0, 0.9));
}

#[test]
fn the_soak_defaults_to_ten_minutes_at_ninety_percent_and_is_bounded() {
    let mix = "name = \"a\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 1\nrole = \"IS\"";
    let s = Scenario::parse(&with_mix(mix)).unwrap();
    assert_eq!((s.bench.soak_s, s.bench.soak_fraction), (600.0, 0.9));
    let skip = format!(
        "{}\n[bench]\nsoak_s = 0.0\nsoak_fraction = 0.5\n",
        with_mix(mix)
    );
    let s = Scenario::parse(&skip).unwrap();
    assert_eq!((s.bench.soak_s, s.bench.soak_fraction), (0.0, 0.5));
    for bad in [
        "soak_s = -1.0",
        "soak_s = 3601.0",
        "soak_s = nan",
        "soak_fraction = 0.0",
        "soak_fraction = 2.5",
    ] {
        let text = format!("{}\n[bench]\n{bad}\n", with_mix(mix));
        assert!(
            matches!(
                Scenario::parse(&text),
                Err(ParseFailure::Check(ScenarioError::Load(_)))
            ),
            "{bad}"
        );
    }
}

#[test]
fn services_follow_the_command_variant() {
    let text = with_mix("name = \"a\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 2\nrole = \"IS\"");
    let s = Scenario::parse(&text).unwrap();
    assert_eq!(s.mix[0].service(), DuisService::Dcc);
    assert_eq!(s.mix[0].body_element(), "ReadInstantaneousImportRegisters");
    assert!(!s.mix[0].non_device());
}

#[test]
fn refuses_what_the_gateway_would_refuse() {
    let cases = [
        ("srv = \"4.1.1\"\ncv = 8\nrole = \"IS\"", "CommandVariant"),
        ("srv = \"4.1.1\"\ncv = 1\nrole = \"OU\"", "Role"),
        ("srv = \"8.6\"\ncv = 8\nrole = \"IS\"", "NotRequestable"),
        ("srv = \"4.2\"\ncv = 1\nrole = \"ES\"", "NoUsers"),
        (
            "srv = \"4.1.1\"\ncv = 1\nrole = \"IS\"\nbody = \"<!DOCTYPE x>\"",
            "Body",
        ),
    ];
    for (mix, want) in cases {
        let e = check_error(&with_mix(&format!("name = \"a\"\nweight = 1\n{mix}")));
        assert!(format!("{e:?}").starts_with(want), "{mix}: {e:?}");
    }
    let e = check_error(&with_mix(
        "name = \"a\"\nweight = 0\nsrv = \"4.1.1\"\ncv = 1\nrole = \"IS\"",
    ));
    assert!(matches!(e, ScenarioError::EmptyMix));
}

#[test]
fn refuses_unknown_keys_and_bad_loads() {
    let mix = "name = \"a\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 1\nrole = \"IS\"";
    let typo = with_mix(mix).replace("duration_s", "durations");
    assert!(matches!(Scenario::parse(&typo), Err(ParseFailure::Toml(_))));
    for (from, to) in [
        ("rate = 10.0", "rate = 0.0"),
        ("rate = 10.0", "rate = 1e9"),
        ("duration_s = 2.0", "duration_s = -1.0"),
        ("duration_s = 2.0", "duration_s = 99999.0"),
        ("devices = 1000", "devices = 0"),
    ] {
        let text = with_mix(mix).replace(from, to);
        assert!(Scenario::parse(&text).is_err(), "{to}");
    }
}

#[test]
fn ramps_and_steps_expand() {
    let ramp = Load::Ramp {
        start: 100.0,
        step: 50.0,
        step_s: 2.0,
        max: 250.0,
    };
    let rates: Vec<f64> = ramp.steps().iter().map(|s| s.rate).collect();
    assert_eq!(rates, [100.0, 150.0, 200.0, 250.0]);
    assert_eq!(ramp.duration_s(), 8.0);
    assert_eq!(ramp.requests(), 2.0 * (100.0 + 150.0 + 200.0 + 250.0));
    let zero_step = Load::Ramp {
        start: 1.0,
        step: 0.0,
        step_s: 1.0,
        max: 2.0,
    };
    assert!(zero_step.check().is_err());
}

#[test]
fn routing_tables_are_checked_by_the_gateways_own_types() {
    let mix = "name = \"a\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 1\nrole = \"IS\"";
    let routed = format!(
        "{}\n[routing.hub]\ndefault = {{ latency = {{ kind = \"fixed\", ms = 5 }} }}\n",
        with_mix(mix)
    );
    assert!(Scenario::parse(&routed).is_ok());
    for (from, to, want) in [
        ("kind = \"fixed\"", "kind = \"fast\"", "Hub"),
        (
            "[routing.hub]",
            "[routing.dispatch]\ntimeout = 5\n[routing.hub]",
            "Dispatch",
        ),
        (
            "[routing.hub]",
            "[routing.hub]\nalerts = { rate_per_sec = -1.0 }",
            "HubCheck",
        ),
    ] {
        let e = check_error(&routed.replace(from, to));
        assert!(format!("{e:?}").starts_with(want), "{to}: {e:?}");
    }
}

#[test]
fn routed_device_requests_cost_three_signatures_and_the_rest_one() {
    // One CV1 read (routed: answer, command, Service Response), one CV2 read (answer only) and
    // one non-device CV8 request (answer only), equally weighted: (3 + 1 + 1) / 3.
    let mix = "name = \"a\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 1\nrole = \"IS\"\n\n\
               [[mix]]\nname = \"b\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 2\nrole = \"GS\"\n\n\
               [[mix]]\nname = \"c\"\nweight = 1\nsrv = \"8.2\"\ncv = 8\nrole = \"IS\"\n\
               body = \"<sr:DeviceID>00-0D-6F-00-00-00-00-09</sr:DeviceID>\"";
    // Every scenario routes: with its own [routing] table or the defaults.
    let plain = Scenario::parse(&with_mix(mix)).unwrap();
    assert!((plain.signs_per_request() - 5.0 / 3.0).abs() < 1e-12);
    let routed = Scenario::parse(&format!("{}\n[routing]\n", with_mix(mix))).unwrap();
    assert!((routed.signs_per_request() - 5.0 / 3.0).abs() < 1e-12);
}

#[test]
fn a_transform_is_a_critical_pair_with_its_signed_pre_commands_variant() {
    let pair = "name = \"c\"\nweight = 1\nsrv = \"7.1\"\ncv = 4\nsigned_cv = 5\nrole = \"IS\"";
    let s = Scenario::parse(&with_mix(pair)).unwrap();
    let m = &s.mix[0];
    assert_eq!(m.critical().map(|cv| cv.get()), Some(5));
    assert_eq!(m.final_cv().get(), 5);
    assert_eq!(m.service(), DuisService::Transform);
    assert_eq!(service_of(m.final_cv()), DuisService::Send);
    assert!(m.routed() && !m.local_delivery());
    // Two answers, the hub command and the Service Response; both requests' XML signatures and
    // the User's signature on the pre-command.
    assert!((s.signs_per_request() - 4.0).abs() < 1e-12);
    assert!((s.verifies_per_request() - 3.0).abs() < 1e-12);
    let local =
        Scenario::parse(&with_mix(&pair.replace("signed_cv = 5", "signed_cv = 6"))).unwrap();
    assert!(!local.mix[0].routed() && local.mix[0].local_delivery());

    let cases = [
        // A Transform without its second request, or a second request without a Transform.
        (pair.replace("signed_cv = 5\n", ""), "Critical"),
        (
            "name = \"c\"\nweight = 1\nsrv = \"4.1.1\"\ncv = 1\nsigned_cv = 5\nrole = \"IS\""
                .into(),
            "CommandVariant",
        ),
        (
            "name = \"c\"\nweight = 1\nsrv = \"7.4\"\ncv = 1\nsigned_cv = 1\nrole = \"IS\"".into(),
            "Critical",
        ),
        (
            pair.replace("signed_cv = 5", "signed_cv = 8"),
            "CommandVariant",
        ),
        (pair.replace("signed_cv = 5", "signed_cv = 4"), "Critical"),
    ];
    for (mix, want) in cases {
        let e = check_error(&with_mix(&mix));
        assert!(format!("{e:?}").starts_with(want), "{mix}: {e:?}");
    }
}

#[test]
fn one_class_can_be_kept_alone() {
    let mut s = Scenario::load(&scenarios_dir().join("steady-state.toml")).unwrap();
    s.only("critical").unwrap();
    assert!(!s.mix.is_empty());
    assert!(s
        .mix
        .iter()
        .all(|m| m.name == "critical" && m.critical().is_some()));
    assert!(matches!(
        s.only("no-such-class"),
        Err(ScenarioError::NoSuchClass(_))
    ));
}
