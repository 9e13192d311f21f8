//! The generator against the real gateway (in process, port 0) and against the bare hyper
//! reference: a short, slow run whose every request must be accepted. Counts, not timings.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use dccgw_load::bench::soak::{self, SoakRun};
use dccgw_load::receiver::Receiver;
use dccgw_load::runner::Prepared;
use dccgw_load::scenario::{Load, Scenario};
use dccgw_load::{refserver, setup, tlsconf};

fn scenario() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-state.toml");
    let mut s = Scenario::load(&path).unwrap();
    s.population.devices = 2_000;
    s.population.other_users = 4;
    s
}

/// The generator's receiver, then a gateway for `prepared`'s population whose Users' endpoints
/// are that receiver, with `routing` (its `[routing]` and delivery configuration).
async fn receiver_and_gateway(
    prepared: &Prepared,
    routing: &str,
) -> (Receiver, dccgw::server::Running) {
    let wd = &prepared.workdir;
    let tls = tlsconf::server(&wd.pki("receiver"), &wd.pki_key("receiver"), &wd.pki("ca")).unwrap();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap();
    setup::write_users(wd, &prepared.pop, &receiver.url()).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let config_path = setup::write_gateway_config(wd, &prepared.pop, any, any, routing).unwrap();
    let config = dccgw::config::Config::load(&config_path, Vec::new()).unwrap();
    let gateway = dccgw::server::start(&config).await.unwrap();
    (receiver, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_short_run_is_accepted_by_the_gateway_and_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario(), dir.path())).unwrap();
    let wd = &prepared.workdir;
    let routing = setup::in_process_routing_config(wd).unwrap();
    let (receiver, gateway) = receiver_and_gateway(&prepared, &routing).await;

    let signed = tokio::task::block_in_place(|| prepared.sign(&Load::constant(40.0, 1.5))).unwrap();
    let run = prepared
        .run(&signed, gateway.addr, Some(&receiver), Duration::ZERO)
        .await;
    assert_eq!(run.requests, 60);
    assert_eq!(run.accepted, 60, "answers: {:?}", run.codes);
    // Every critical pair's signed pre-command was sent and acknowledged.
    for c in run.critical.values() {
        assert_eq!((c.signed, c.accepted), (c.pairs, c.pairs), "{c:?}");
    }
    // Device requests are acknowledged I99, non-device ones too (no data yet) or I0.
    assert!(
        run.codes.keys().all(|c| c == "I99" || c == "I0"),
        "{:?}",
        run.codes
    );
    assert_eq!(run.sync.count, 60);
    // Every planned class that appeared has a latency distribution.
    assert!(run.by_class.contains_key("meter-read"));

    // The same signed requests against the hyper reference: answered with the fixed I99.
    let answer = prepared.fixed_answer().unwrap();
    let server_tls =
        tlsconf::server(&wd.pki("server"), &wd.pki_key("server"), &wd.pki("ca")).unwrap();
    let (addr, serve) = refserver::bind(
        "127.0.0.1:0".parse().unwrap(),
        server_tls,
        Bytes::from(answer),
    )
    .await
    .unwrap();
    tokio::spawn(serve);
    let reference = prepared.run(&signed, addr, None, Duration::ZERO).await;
    assert_eq!(reference.accepted, 60, "answers: {:?}", reference.codes);

    // A replay of the same requests is refused by the gateway, not by the reference.
    let replay = prepared
        .run(&signed, gateway.addr, None, Duration::ZERO)
        .await;
    assert_eq!(replay.accepted, 0, "answers: {:?}", replay.codes);
    gateway.shutdown().await;
}

/// With the scenario's `[routing]`: device requests go, signed, to a simulated comms-hub
/// network (the `dccgw commshub` server, here in this process) and every one acknowledged I99
/// brings its Service Response back to the generator's Receive Response endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_requests_bring_their_service_responses_to_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = scenario();
    let routing = &mut scenario.routing;
    // Devices answer at once here: the test counts, it does not time.
    routing.hub = toml::from_str("default = { latency = { kind = \"fixed\", ms = 5 } }").unwrap();
    let routing = routing.clone();
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario, dir.path())).unwrap();
    let wd = &prepared.workdir;

    let hub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_addr = hub_listener.local_addr().unwrap();
    let hub_config = setup::write_hub_config(wd, &prepared.pop, hub_addr, &routing).unwrap();
    let hub: dccgw::commshub::ServeConfig =
        toml::from_str(&std::fs::read_to_string(&hub_config).unwrap()).unwrap();
    let fleet = dccgw::state::load::registry(&hub.devices, &hub.registrations).unwrap();
    let verifier = dccgw::signer::command_verifier(&hub.acb_certs).unwrap();
    // The devices verify the Users' signatures on critical commands with the certificates the
    // hub configuration names.
    let ds_certs = hub.hub.digital_signing_certs.clone().unwrap();
    let trust = dccgw::state::load::digital_signing_anchors(&ds_certs).unwrap();
    assert!(
        trust.len() >= 92,
        "{} Digital Signing certificates",
        trust.len()
    );
    let sim = dccgw::commshub::Simulator::new(hub.hub, fleet, verifier)
        .unwrap()
        .trusting(trust);
    let (stop_hub, stop) = tokio::sync::watch::channel(false);
    let hub_task = tokio::spawn(dccgw::commshub::serve_on(
        hub_listener,
        sim,
        10_000,
        None,
        stop,
    ));

    let extra = setup::routing_config(wd, hub_addr, &routing).unwrap();
    let (receiver, gateway) = receiver_and_gateway(&prepared, &extra).await;

    let signed = tokio::task::block_in_place(|| prepared.sign(&Load::constant(40.0, 1.5))).unwrap();
    let run = prepared
        .run(
            &signed,
            gateway.addr,
            Some(&receiver),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(run.accepted, 60, "answers: {:?}", run.codes);
    let a = &run.async_;
    assert!(a.expected > 10, "too few routed requests: {a:?}");
    assert_eq!(a.received, a.expected, "{a:?}");
    assert_eq!((a.duplicates, a.unmatched), (0, 0), "{a:?}");
    // Each request for local delivery brought its command to the User.
    assert!(a.expected_local > 0, "{a:?}");
    assert_eq!(a.local_commands, a.expected_local, "{a:?}");
    assert_eq!(a.codes.get("I0").copied(), Some(a.expected), "{a:?}");
    gateway.shutdown().await;
    let _ = stop_hub.send(true);
    let _ = hub_task.await;
}

/// Critical requests alone: each a Transform answered I0 with its pre-command, the pre-command
/// signed with the User's Digital Signing key and sent back under the same RequestID (answered
/// I99), then the meter's Service Response at the generator's endpoint. Every pair completes.
/// The scenario's critical class alone (its second request as Command Variant `signed_cv`),
/// prepared, with its receiver and a gateway whose in-process hub trusts the gateway's Digital
/// Signing certificates.
async fn critical_only(dir: &Path, signed_cv: u8) -> (Prepared, Receiver, dccgw::server::Running) {
    let mut scenario = scenario();
    scenario.only("critical").unwrap();
    for m in &mut scenario.mix {
        m.signed_cv = Some(signed_cv.try_into().unwrap());
    }
    scenario.check().unwrap();
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario, dir)).unwrap();
    let wd = &prepared.workdir;
    let routing = setup::in_process_routing_config(wd).unwrap();
    let (receiver, gateway) = receiver_and_gateway(&prepared, &routing).await;
    (prepared, receiver, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_pairs_go_transform_signed_pre_command_and_service_response() {
    let dir = tempfile::tempdir().unwrap();
    let (prepared, receiver, gateway) = critical_only(dir.path(), 5).await;
    let wd = &prepared.workdir;
    let any = "127.0.0.1:0".parse().unwrap();

    // 30 pairs over 1.5 s: Users of the 40 import suppliers, several with more than one pair,
    // each pair's second request before its lane's next Transform.
    let signed = tokio::task::block_in_place(|| prepared.sign(&Load::constant(20.0, 1.5))).unwrap();
    let lanes = signed.plan.lanes(prepared.pop.users.len());
    assert!(lanes.iter().any(|l| l.len() > 1), "no lane with two pairs");
    let run = prepared
        .run(
            &signed,
            gateway.addr,
            Some(&receiver),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(run.requests, 30);
    assert_eq!(run.codes.get("I99"), Some(&30), "answers: {:?}", run.codes);
    let c = &run.critical["critical"];
    assert_eq!((c.pairs, c.signed, c.accepted), (30, 30, 30), "{c:?}");
    assert_eq!(c.transform.count, 30);
    assert_eq!(c.signed_precommand.count, 30);
    let a = &run.async_;
    assert_eq!((a.expected, a.received), (30, 30), "{a:?}");
    assert_eq!(a.codes.get("I0"), Some(&30), "{a:?}");
    assert_eq!(
        (a.duplicates, a.unmatched, a.unreadable),
        (0, 0, 0),
        "{a:?}"
    );
    assert_eq!(c.device_response.count, 30, "{c:?}");

    // Against the reference a Transform is answered with the fixed I99: no pre-command, so no
    // second request; the pair ends there.
    let answer = prepared.fixed_answer().unwrap();
    let server_tls =
        tlsconf::server(&wd.pki("server"), &wd.pki_key("server"), &wd.pki("ca")).unwrap();
    let (addr, serve) = refserver::bind(any, server_tls, Bytes::from(answer))
        .await
        .unwrap();
    tokio::spawn(serve);
    let reference = prepared.run(&signed, addr, None, Duration::ZERO).await;
    assert_eq!(reference.accepted, 30, "answers: {:?}", reference.codes);
    assert_eq!(reference.critical["critical"].signed, 0);
    gateway.shutdown().await;
}

/// A critical pair whose signed pre-command goes back as Command Variant 7: the command comes
/// to the User for local delivery and goes to the meter, whose Service Response follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_pairs_for_local_delivery_and_the_device_bring_both() {
    let dir = tempfile::tempdir().unwrap();
    let (prepared, receiver, gateway) = critical_only(dir.path(), 7).await;
    let signed = tokio::task::block_in_place(|| prepared.sign(&Load::constant(10.0, 1.0))).unwrap();
    let run = prepared
        .run(
            &signed,
            gateway.addr,
            Some(&receiver),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(run.codes.get("I99"), Some(&10), "answers: {:?}", run.codes);
    let c = &run.critical["critical"];
    assert_eq!((c.pairs, c.signed, c.accepted), (10, 10, 10), "{c:?}");
    let a = &run.async_;
    assert_eq!((a.expected_local, a.local_commands), (10, 10), "{a:?}");
    assert_eq!((a.expected, a.received), (10, 10), "{a:?}");
    assert_eq!(a.codes.get("I0"), Some(&10), "{a:?}");
    gateway.shutdown().await;
}

/// A soak of three seconds against the in-process gateway, in windows of one second (a minute in
/// the bench): the row is there, with one entry per window holding that window's requests, the
/// figures the report shows, and the scenario's SLA checked. Counts, not timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_reports_its_row_and_each_window() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = tokio::task::block_in_place(|| Prepared::new(scenario(), dir.path())).unwrap();
    let routing = setup::in_process_routing_config(&prepared.workdir).unwrap();
    let (receiver, gateway) = receiver_and_gateway(&prepared, &routing).await;
    let run = SoakRun {
        addr: gateway.addr,
        // The gateway runs in this process.
        pid: std::process::id(),
        receiver: Some(&receiver),
        grace: Duration::from_secs(5),
        saturation_rps: 40.0,
        fraction: 0.5,
        duration_s: 3.0,
        window_s: 1.0,
    };
    let row = soak::run(&prepared, &run, &prepared.scenario.sla)
        .await
        .unwrap();
    assert_eq!(row.rate_rps, 20.0);
    assert_eq!(row.held_s, 3.0);
    assert_eq!((row.requests, row.accepted), (60, 60), "{:?}", row.errors);
    assert!(row.errors.is_empty(), "{:?}", row.errors);
    assert_eq!(row.sync.count, 60);
    let starts: Vec<f64> = row.windows.iter().map(|w| w.start_s).collect();
    assert_eq!(starts, [0.0, 1.0, 2.0]);
    for w in &row.windows {
        assert_eq!((w.requests, w.accepted), (20, 20), "{w:?}");
        assert!(w.sync_p99_us > 0 && w.sync_p99_us <= w.sync_max_us, "{w:?}");
    }
    // Device requests went to the in-process hub and Service Responses came back (all of them
    // is the routing test's business: the in-process devices' delays have a tail the grace may
    // not cover).
    assert!(row.routed && row.async_expected > 0, "{row:?}");
    assert!(
        row.async_received > 0 && row.async_received <= row.async_expected,
        "{row:?}"
    );
    assert!(row.async_p99_us.is_some());
    assert!(row.rss_start_kib.is_some() && row.rss_end_kib.is_some());
    // The steady-state scenario's four thresholds, each checked over the whole soak.
    let names: Vec<&str> = row.sla.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "sync_p99_ms",
            "sync_p999_ms",
            "async_p99_ms",
            "max_error_ratio"
        ]
    );
    assert!(row.sla.iter().all(|c| c.run == "gateway soak"));
    assert_eq!(row.pass, row.sla.iter().all(|c| c.pass));
    // The JSON report carries the row with its windows.
    let json = serde_json::to_value(&row).unwrap();
    assert_eq!(json["windows"].as_array().map(Vec::len), Some(3));
    gateway.shutdown().await;
}
