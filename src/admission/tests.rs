use super::gradient::{Gradient2, MIN_WINDOW_SAMPLES};
use super::*;
use crate::catalogue::Catalogue;
use crate::domain::{Srv, UserId};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn user(n: u8) -> UserId {
    format!("90-B3-D5-1F-30-0{n}-00-00").parse().unwrap()
}

fn fixed(limit: usize) -> AdmissionConfig {
    AdmissionConfig {
        adaptive: false,
        initial_limit: limit,
        bulk_share: 1.0,
        ..AdmissionConfig::default()
    }
}

fn class(srv: &str) -> Class {
    ClassTable::new(Catalogue::builtin()).get(&srv.parse::<Srv>().unwrap())
}

#[test]
fn the_class_table_names_catalogue_srvs_and_puts_critical_commands_first() {
    let catalogue = Catalogue::builtin();
    for srv in classes::BULK.iter().chain(classes::PREPAYMENT) {
        let entry = catalogue.get(&srv.parse().unwrap());
        assert!(entry.is_some(), "{srv} is not in the catalogue");
        assert!(
            !entry.unwrap().critical || !classes::BULK.contains(srv),
            "{srv}"
        );
    }
    for entry in catalogue.iter() {
        if entry.critical {
            assert_eq!(class_of(entry), Class::Critical, "{}", entry.srv);
        }
    }
    let cases = [
        ("7.1", Class::Critical),  // Enable Supply
        ("7.3", Class::Critical),  // Arm Supply
        ("2.2", Class::Critical),  // Top Up Device
        ("1.5", Class::Critical),  // Update Meter Balance (credit adjustment)
        ("2.5", Class::Critical),  // Activate Emergency Credit
        ("4.18", Class::Standard), // Read Meter Balance: a prepayment read
        ("6.12", Class::Standard),
        ("8.13", Class::Standard),
        ("4.1.1", Class::Bulk),
        ("4.8.1", Class::Bulk),
        ("8.2", Class::Bulk),
    ];
    for (srv, want) in cases {
        assert_eq!(class(srv), want, "{srv}");
    }
}

#[test]
fn at_a_fixed_limit_of_n_the_next_bulk_request_is_shed_and_a_critical_one_admitted() {
    let n = 5;
    let mut l = Limiter::new(fixed(n));
    let admitted: Vec<_> = (0..n)
        .map(|i| l.admit(user(1 + (i % 3) as u8), Class::Bulk, 0).unwrap())
        .collect();
    assert_eq!(l.inflight(), n);
    assert_eq!(
        l.admit(user(4), Class::Bulk, 0),
        Err(Shed::Overload(Class::Bulk))
    );
    assert_eq!(
        l.admit(user(4), Class::Standard, 0),
        Err(Shed::Overload(Class::Standard))
    );
    let critical = l.admit(user(4), Class::Critical, 0).unwrap();
    assert_eq!(critical.inflight, n + 1);
    // One answered: one more bulk request fits.
    l.release(&admitted[0], MS);
    l.release(&critical, MS);
    assert!(l.admit(user(4), Class::Bulk, MS).is_ok());
}

#[test]
fn bulk_reads_fill_only_their_share_and_critical_requests_go_to_the_maximum() {
    let config = AdmissionConfig {
        adaptive: false,
        initial_limit: 8,
        max_limit: 12,
        bulk_share: 0.5,
        ..AdmissionConfig::default()
    };
    let mut l = Limiter::new(config);
    assert_eq!(
        CLASSES.map(|c| l.ceiling(c)),
        [12, 8, 4],
        "critical, standard, bulk"
    );
    for _ in 0..4 {
        l.admit(user(1), Class::Bulk, 0).unwrap();
    }
    assert_eq!(
        l.admit(user(1), Class::Bulk, 0),
        Err(Shed::Overload(Class::Bulk))
    );
    for _ in 0..4 {
        l.admit(user(1), Class::Standard, 0).unwrap();
    }
    assert_eq!(
        l.admit(user(1), Class::Standard, 0),
        Err(Shed::Overload(Class::Standard))
    );
    for _ in 0..4 {
        l.admit(user(1), Class::Critical, 0).unwrap();
    }
    assert_eq!(
        l.admit(user(1), Class::Critical, 0),
        Err(Shed::Overload(Class::Critical))
    );
}

#[test]
fn a_users_concurrency_bound_refuses_that_user_only() {
    let config = AdmissionConfig {
        per_user_concurrency: 2,
        ..fixed(100)
    };
    let mut l = Limiter::new(config);
    let first = l.admit(user(1), Class::Critical, 0).unwrap();
    l.admit(user(1), Class::Bulk, 0).unwrap();
    assert_eq!(
        l.admit(user(1), Class::Critical, 0),
        Err(Shed::UserConcurrency)
    );
    assert!(
        l.admit(user(2), Class::Bulk, 0).is_ok(),
        "another User is not affected"
    );
    l.release(&first, MS);
    assert!(
        l.admit(user(1), Class::Bulk, MS).is_ok(),
        "a slot is given back"
    );
}

#[test]
fn a_users_rate_is_a_token_bucket_and_a_refusal_takes_no_token() {
    let config = AdmissionConfig {
        per_user_rate: 2.0,
        per_user_burst: 3.0,
        ..fixed(100)
    };
    let mut l = Limiter::new(config);
    for _ in 0..3 {
        let a = l.admit(user(1), Class::Bulk, 0).unwrap();
        l.release(&a, 0);
    }
    assert_eq!(l.admit(user(1), Class::Bulk, 0), Err(Shed::UserRate));
    assert_eq!(l.retry_after_secs(&user(1)), 1);
    assert!(
        l.admit(user(2), Class::Bulk, 0).is_ok(),
        "another User has its own bucket"
    );
    // Half a second at 2 per second earns one token, and one only.
    assert!(l.admit(user(1), Class::Bulk, S / 2).is_ok());
    assert_eq!(l.admit(user(1), Class::Bulk, S / 2), Err(Shed::UserRate));
    // A refusal by the global limit takes no token either.
    let mut full = Limiter::new(AdmissionConfig {
        per_user_burst: 1.0,
        ..fixed(1)
    });
    let held = full.admit(user(3), Class::Bulk, 0).unwrap();
    assert_eq!(
        full.admit(user(4), Class::Bulk, 0),
        Err(Shed::Overload(Class::Bulk))
    );
    full.release(&held, 0);
    assert!(
        full.admit(user(4), Class::Bulk, 0).is_ok(),
        "user 4 still has its token"
    );
}

#[test]
fn idle_users_are_forgotten_at_the_bound_and_busy_ones_kept() {
    let config = AdmissionConfig {
        max_users: 2,
        per_user_rate: 1.0,
        per_user_burst: 1.0,
        ..fixed(100)
    };
    let mut l = Limiter::new(config);
    let busy = l.admit(user(1), Class::Bulk, 0).unwrap();
    let idle = l.admit(user(2), Class::Bulk, 0).unwrap();
    l.release(&idle, 0);
    // Two seconds on, user 2's bucket is full again and it has nothing in flight.
    l.admit(user(3), Class::Bulk, 2 * S).unwrap();
    assert_eq!(l.users(), 2, "user 2 forgotten, users 1 and 3 kept");
    l.release(&busy, 2 * S);
}

/// Feeds `windows` windows of `rtt` latency at `inflight` requests in flight; the limit after.
fn feed(g: &mut Gradient2, t: &mut u64, windows: u32, rtt: u64, inflight: usize) -> usize {
    for _ in 0..windows {
        for _ in 0..MIN_WINDOW_SAMPLES {
            *t += 50 * MS;
            g.sample(*t, rtt, inflight);
        }
    }
    g.limit()
}

#[test]
fn gradient2_grows_while_latency_holds_and_shrinks_when_a_queue_forms() {
    let mut g = Gradient2::new(20, 4, 200, 500 * MS);
    let mut t = 0;
    let steady = feed(&mut g, &mut t, 20, 2 * MS, 20);
    assert!(steady > 20, "grows by the queue size while used: {steady}");
    // Latency four times the long-term average: a queue is forming, the limit comes down.
    let loaded = feed(&mut g, &mut t, 10, 8 * MS, steady);
    assert!(loaded < steady * 2 / 3, "{steady} → {loaded}");
    // Latency back to normal: it grows again.
    let recovered = feed(&mut g, &mut t, 20, 2 * MS, loaded);
    assert!(recovered > loaded, "{loaded} → {recovered}");
}

#[test]
fn gradient2_does_not_grow_unused_and_stays_within_its_bounds() {
    let mut g = Gradient2::new(20, 10, 30, 500 * MS);
    let mut t = 0;
    assert_eq!(
        feed(&mut g, &mut t, 20, 2 * MS, 3),
        20,
        "3 in flight do not use 20"
    );
    assert_eq!(feed(&mut g, &mut t, 50, 2 * MS, 30), 30, "max");
    assert_eq!(feed(&mut g, &mut t, 100, 500 * MS, 30), 10, "min");
    // A window closes only with its samples and its time.
    let mut g = Gradient2::new(20, 4, 30, 500 * MS);
    for i in 0..MIN_WINDOW_SAMPLES * 10 {
        assert_eq!(g.sample(u64::from(i) * MS, 2 * MS, 20), None, "{i}");
    }
    assert!(g.long_rtt_ns().is_none());
}

#[test]
fn a_fixed_limit_does_not_adapt() {
    let mut l = Limiter::new(fixed(7));
    for i in 0..1_000 {
        let a = l.admit(user(1), Class::Standard, i * MS).unwrap();
        assert_eq!(l.release(&a, i * MS + 100 * MS), None);
    }
    assert_eq!(l.limit(), 7);
}

#[test]
fn configurations_that_make_the_bounds_meaningless_are_refused() {
    assert_eq!(AdmissionConfig::default().validate(), Ok(()));
    let cases: [(AdmissionConfig, &str); 5] = [
        (
            AdmissionConfig {
                min_limit: 0,
                ..Default::default()
            },
            "min_limit",
        ),
        (
            AdmissionConfig {
                max_limit: 2,
                ..Default::default()
            },
            "max_limit",
        ),
        (
            AdmissionConfig {
                bulk_share: 1.5,
                ..Default::default()
            },
            "bulk_share",
        ),
        (
            AdmissionConfig {
                per_user_rate: 0.0,
                ..Default::default()
            },
            "per_user_rate",
        ),
        (
            AdmissionConfig {
                per_user_burst: f64::NAN,
                ..Default::default()
            },
            "per_user_burst",
        ),
    ];
    for (config, key) in cases {
        assert_eq!(config.validate(), Err(ConfigError { key }));
    }
}

#[test]
fn docs_admission_lists_every_srv_in_its_class() {
    let doc = include_str!("../../docs/admission.md");
    let catalogue = Catalogue::builtin();
    for c in CLASSES {
        let heading = format!("### {} (", c.label());
        let at = doc.find(&heading).unwrap_or_else(|| panic!("{heading}"));
        let section = &doc[at..];
        let end = section[4..].find("\n#").map_or(section.len(), |e| e + 4);
        let section = &section[..end];
        for entry in catalogue.iter().filter(|e| class_of(e) == c) {
            let named = format!("{} {}", entry.srv, entry.name);
            assert!(section.contains(&named), "{named} not under {heading}");
        }
    }
}
