//! The simulator's plans, its configuration, its random generator, and its GBCS frames; the
//! dispatcher in front of it (`dispatcher.rs`).

mod dispatcher;

use std::time::Duration;

use super::config::SUPPLY_OUTAGE_RESTORE;
use super::rng::SimRng;
use super::*;
use crate::dispatch::{HubEvent, FUTURE_DATED_EXECUTED, FUTURE_DATED_FAILED};
use crate::domain::{DeviceType, SmkiRole};
use crate::gbcs::command::mac_holds;
use crate::gbcs::{Apdu, Cra, DlmsDateTime, GeneralSigning, MessageCode};
use crate::testing::fixture::{self, Fleet, SUPPLIER};

const NOW_MS: i64 = 1_700_000_100_000;

fn simulator(config: HubConfig, fleet: &Fleet) -> (Simulator, crate::routing::CommandSigner) {
    let (signer, verifier, _) = fixture::broker();
    let sim = Simulator::new(config, fleet.snapshot.clone(), verifier).unwrap();
    (sim, signer)
}

fn toml(text: &str) -> HubConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn a_default_command_gets_one_gbcs_response() {
    let fleet = Fleet::new(2);
    let (mut sim, signer) = simulator(HubConfig::default(), &fleet);
    let cmd = fleet.command(&signer, fleet.esmes[0], "4.1.1", 9, None);
    let plan = sim.accept(cmd.as_bytes(), NOW_MS).unwrap();
    assert_eq!(plan.len(), 1);
    let HubEvent::Response {
        request_id,
        device,
        payload,
        at,
    } = &plan[0].event
    else {
        panic!("not a response: {plan:?}");
    };
    assert_eq!((request_id.counter, *device), (9, fleet.esmes[0]));
    assert_eq!(*at, (NOW_MS + plan[0].after.as_millis() as i64) / 1000);
    // A non-critical command's response: unsigned, behind the MAC header, under the command's
    // counter and message code (ECS17b's, 0x0027), with ECS17b's response content.
    let apdu = Apdu::decode(payload).expect("a GBCS frame");
    let Apdu::Mac(sealed) = &apdu else {
        panic!("not behind a MAC header")
    };
    assert!(mac_holds(sealed));
    let frame = apdu.general_signing();
    assert_eq!(frame.transaction.cra, Cra::Response);
    assert_eq!(frame.transaction.counter, 9);
    assert_eq!(
        (frame.originator, frame.recipient),
        (fleet.esmes[0], SUPPLIER)
    );
    let when = time::OffsetDateTime::from_unix_timestamp(*at).unwrap();
    assert_eq!(frame.date_time, Some(DlmsDateTime::from_utc(when)));
    assert_eq!(frame.other.message_code, MessageCode(0x0027));
    assert!(crate::gbcs::dlms::AccessResponse::decode(&frame.content).is_ok());
}

/// The alert frame in an event's payload.
fn alert_frame(payload: &[u8]) -> GeneralSigning {
    let frame = Apdu::decode(payload).expect("a GBCS frame");
    let frame = frame.general_signing().clone();
    assert_eq!(frame.transaction.cra, Cra::Alert);
    frame
}

#[test]
fn unsigned_forged_and_untrusted_commands_are_refused() {
    let fleet = Fleet::new(1);
    let (mut sim, signer) = simulator(HubConfig::default(), &fleet);
    let good = fleet.command(&signer, fleet.esmes[0], "4.1.1", 1, None);
    let b = good.as_bytes();
    assert!(sim.accept(&b[..b.len() - 64], NOW_MS).is_err());
    let mut forged = b.to_vec();
    forged[30] ^= 0x40;
    assert!(matches!(
        sim.accept(&forged, NOW_MS),
        Err(crate::routing::RoutingError::BadSignature | crate::routing::RoutingError::Field(_))
    ));
    let (other, _, _) = fixture::broker();
    let stranger = fleet.command(&other, fleet.esmes[0], "4.1.1", 1, None);
    assert!(matches!(
        sim.accept(stranger.as_bytes(), NOW_MS),
        Err(crate::routing::RoutingError::UnknownSigner { .. })
    ));
    assert!(sim.accept(b"", NOW_MS).is_err());
}

#[test]
fn faults_alerts_and_future_dated_execution_follow_the_configuration() {
    let fleet = Fleet::new(2);
    let config = toml(
        r#"
        seed = 1
        [default]
        latency = { kind = "fixed", ms = 1000 }
        [srv."4.1.1"]
        alerts_before = [{ code = 0x8F01, delay_ms = 300 }]
        alerts_after = [{ code = 0x8F02, delay_ms = 500 }, { code = 0x8F03, probability = 0.0 }]
        [[groups]]
        device_types = ["GSME"]
        unreachable = 1.0
        [[groups]]
        chfs = ["00-DB-12-03-00-00-00-01"]
        srvs = ["4.1.1"]
        no_answer = 1.0
        "#,
    );
    let (mut sim, signer) = simulator(config, &fleet);
    // ESME behind hub 0, 4.1.1: alert before, response, alert after.
    let plan = sim
        .accept(
            fleet
                .command(&signer, fleet.esmes[0], "4.1.1", 1, None)
                .as_bytes(),
            NOW_MS,
        )
        .unwrap();
    let shape: Vec<(u64, &str)> = plan
        .iter()
        .map(|s| {
            let kind = match &s.event {
                HubEvent::Alert { code: 0x8F01, .. } => "8F01",
                HubEvent::Alert { code: 0x8F02, .. } => "8F02",
                HubEvent::Response { .. } => "response",
                other => panic!("unexpected {other:?}"),
            };
            (s.after.as_millis() as u64, kind)
        })
        .collect();
    assert_eq!(shape, [(700, "8F01"), (1000, "response"), (1500, "8F02")]);
    // A GSME is unreachable (group by device type): E20 after the latency.
    let plan = sim
        .accept(
            fleet
                .command(&signer, fleet.gsmes[0], "4.1.1", 2, None)
                .as_bytes(),
            NOW_MS,
        )
        .unwrap();
    assert!(
        matches!(&plan[..], [Scheduled { after, event: HubEvent::Unreachable { .. } }] if *after == Duration::from_secs(1))
    );
    // Hub 1's ESME never answers 4.1.1 (group by hub and SRV), but answers another SRV.
    let cmd = fleet.command(&signer, fleet.esmes[1], "4.1.1", 3, None);
    assert!(sim.accept(cmd.as_bytes(), NOW_MS).unwrap().is_empty());
    let cmd = fleet.command(&signer, fleet.esmes[1], "11.2", 4, None);
    assert_eq!(sim.accept(cmd.as_bytes(), NOW_MS).unwrap().len(), 1);
    // Future-dated: the response now, 8F66 at the execution time.
    let execute_at = NOW_MS / 1000 + 3600;
    let cmd = fleet.command(&signer, fleet.esmes[0], "11.2", 5, Some(execute_at));
    let plan = sim.accept(cmd.as_bytes(), NOW_MS).unwrap();
    let fd = plan.last().unwrap();
    match &fd.event {
        HubEvent::FutureDated {
            code,
            at,
            payload,
            request_id,
            ..
        } => {
            assert_eq!(*code, FUTURE_DATED_EXECUTED);
            assert_eq!(*at, execute_at);
            assert_eq!(request_id.counter, 5);
            let frame = alert_frame(payload);
            assert_eq!(frame.recipient, SUPPLIER);
            // An 8F66 is critical: signed by the device, bare, in GBCS's generic alert form.
            assert!(matches!(
                frame.signature,
                crate::gbcs::SignatureField::Ecdsa(_)
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fd.after,
        Duration::from_millis(3_600_000 - (NOW_MS % 1000) as u64)
    );
    // Too far ahead: fails at once.
    let cmd = fleet.command(
        &signer,
        fleet.esmes[0],
        "11.2",
        6,
        Some(execute_at + 100 * 86_400),
    );
    let plan = sim.accept(cmd.as_bytes(), NOW_MS).unwrap();
    assert!(matches!(
        plan.last().unwrap().event,
        HubEvent::FutureDated {
            code: FUTURE_DATED_FAILED,
            ..
        }
    ));
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let fleet = Fleet::new(20);
    let config = toml(
        r#"
        seed = 42
        [default]
        unreachable = 0.2
        no_answer = 0.2
        [alerts]
        rate_per_sec = 10.0
        codes = [{ code = 0x8F35, weight = 1 }, { code = 0x8002, weight = 1 }]
        "#,
    );
    let run = |config: HubConfig, reverse: bool| {
        let (mut sim, signer) = simulator(config, &fleet);
        let mut out = Vec::new();
        // Commands in a different order must not change any one command's fate.
        let mut order: Vec<usize> = (0..20).collect();
        if reverse {
            order.reverse();
        }
        let mut fates = vec![None; 20];
        for i in order {
            let cmd = fleet.command(&signer, fleet.esmes[i], "4.1.1", i as u64 + 1, None);
            let plan = sim.accept(cmd.as_bytes(), NOW_MS).unwrap();
            fates[i] = Some(
                plan.iter()
                    .map(|s| (s.after, std::mem::discriminant(&s.event)))
                    .collect::<Vec<_>>(),
            );
        }
        for _ in 0..50 {
            let s = sim.next_alert(NOW_MS).unwrap();
            out.push((s.after, s.event.device()));
        }
        (fates, out)
    };
    let (fates_a, alerts_a) = run(config.clone(), false);
    let (fates_b, alerts_b) = run(config.clone(), false);
    assert_eq!(fates_a, fates_b);
    assert_eq!(alerts_a, alerts_b);
    let (fates_c, _) = run(config.clone(), true);
    assert_eq!(
        fates_a, fates_c,
        "a command's fate depends on the seed and itself only"
    );
    // Some of each fate among 20 commands at these rates.
    let kinds: std::collections::HashSet<usize> =
        fates_a.iter().map(|f| f.as_ref().unwrap().len()).collect();
    assert!(kinds.contains(&0) && kinds.contains(&1), "{kinds:?}");
    let (_, alerts_d) = run(HubConfig { seed: 43, ..config }, false);
    assert_ne!(alerts_a, alerts_d);
}

#[test]
fn spontaneous_alerts_come_from_the_configured_device_types_at_the_rate() {
    let fleet = Fleet::new(10);
    let config = toml("[alerts]\nrate_per_sec = 100.0\ndevice_types = [\"GSME\"]\ncodes = [{ code = 0x8F35, weight = 1 }]");
    let (mut sim, _) = simulator(config, &fleet);
    let mut total = Duration::ZERO;
    for _ in 0..2000 {
        let s = sim.next_alert(NOW_MS).unwrap();
        total += s.after;
        match s.event {
            HubEvent::Alert { device, code, .. } => {
                assert!(fleet.gsmes.contains(&device));
                assert_eq!(code, SUPPLY_OUTAGE_RESTORE);
            }
            other => panic!("{other:?}"),
        }
    }
    // 2000 alerts at 100/s: about 20 s (the mean of 2000 exponential gaps is within 10 %).
    let secs = total.as_secs_f64();
    assert!((18.0..22.0).contains(&secs), "{secs}");
    let (mut quiet, _) = simulator(HubConfig::default(), &fleet);
    assert!(quiet.next_alert(NOW_MS).is_none());
}

#[test]
fn a_storm_reaches_every_device_behind_the_chosen_hubs() {
    let fleet = Fleet::new(10);
    let (mut sim, _) = simulator(HubConfig::default(), &fleet);
    let storm = Storm {
        after_secs: 0,
        hubs: 3,
        code: SUPPLY_OUTAGE_RESTORE,
        spread_ms: 1000,
    };
    let plan = sim.storm(&storm, NOW_MS);
    assert_eq!(plan.len(), 6, "two devices behind each of three hubs");
    let mut hubs = std::collections::HashSet::new();
    for s in &plan {
        assert!(s.after <= Duration::from_secs(1));
        let d = fleet.snapshot.device(s.event.device()).unwrap();
        hubs.insert(d.chf.unwrap());
    }
    assert_eq!(hubs.len(), 3);
    let all = sim.storm(&Storm { hubs: 50, ..storm }, NOW_MS);
    assert_eq!(all.len(), 20);
}

#[test]
fn bad_configurations_are_refused() {
    let bad = [
        ("[default]\nunreachable = 1.5", "probability"),
        (
            "[default]\nunreachable = 0.6\nno_answer = 0.6",
            "more than 1",
        ),
        (
            "[default]\nlatency = { kind = \"uniform\", min_ms = 5, max_ms = 1 }",
            "latency",
        ),
        ("[srv.\"4.1.1\"]\nno_answer = -0.1", "probability"),
        (
            "[[groups]]\ndevice_types = [\"ESME\"]\nresponse_bytes = 100000",
            "response_bytes",
        ),
        (
            "[alerts]\nrate_per_sec = 1.0\ncodes = []",
            "at least one code",
        ),
        ("max_in_flight = 0", "max_in_flight"),
    ];
    for (text, want) in bad {
        let err = toml(text).check().unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    for misspelt in [
        "sead = 1",
        "[default]\nlatncy = { kind = \"fixed\", ms = 1 }",
        "[[groups]]\ndevice_type = [\"ESME\"]",
        "[[groups]]\nunreachabel = 0.5",
        "[[groups]]\ndevice_types = [\"METER\"]",
        "[srv.\"4.1\"]\nfoo = 1",
    ] {
        assert!(toml::from_str::<HubConfig>(misspelt).is_err(), "{misspelt}");
    }
    assert!(HubConfig::default().check().is_ok());
}

#[test]
fn latency_draws_stay_in_their_distribution() {
    let mut rng = SimRng::new(7, 0);
    for _ in 0..1000 {
        let d = rng.latency(&Latency::Uniform {
            min_ms: 10,
            max_ms: 20,
        });
        assert!((10..=20).contains(&(d.as_millis() as u64)));
    }
    let mut draws: Vec<u128> = (0..10_000)
        .map(|_| {
            rng.latency(&Latency::LogNormal {
                median_ms: 400,
                p99_ms: 3000,
            })
            .as_millis()
        })
        .collect();
    draws.sort_unstable();
    let (median, p99) = (draws[5_000], draws[9_900]);
    assert!((360..440).contains(&median), "median {median}");
    assert!((2500..3600).contains(&p99), "p99 {p99}");
    assert_eq!(rng.latency(&Latency::Fixed { ms: 0 }), Duration::ZERO);
    let (mut a, mut b) = (SimRng::new(1, 2), SimRng::new(1, 2));
    assert_eq!(
        (0..8).map(|_| a.next_u64()).collect::<Vec<_>>(),
        (0..8).map(|_| b.next_u64()).collect::<Vec<_>>()
    );
}

#[test]
fn the_fixture_broker_is_an_acb() {
    let (_, cert) = fixture::issue(SmkiRole::AccessControlBroker);
    let id = crate::identity::identity_from_pem(cert.as_bytes()).unwrap();
    assert_eq!(id.role, SmkiRole::AccessControlBroker);
    assert!(HubConfig::default()
        .alerts
        .device_types
        .contains(&DeviceType::Esme));
}
