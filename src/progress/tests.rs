use std::time::Duration;

use super::*;

#[test]
fn lines_say_the_share_done_and_the_time_taken() {
    let gb = 1u64 << 30;
    assert_eq!(
        line(
            "Loading the registry",
            gb,
            Some(4 * gb),
            Unit::Bytes,
            Duration::from_millis(12_340)
        ),
        "Loading the registry: 25% (1.0 GB of 4.0 GB), 12.3 s elapsed."
    );
    assert_eq!(
        line("Verifying", 7, None, Unit::Records, Duration::from_secs(2)),
        "Verifying: 7 records so far, 2.0 s elapsed."
    );
    // More counted than the total (a file that grew) never says over 100 %.
    assert!(line("x", 11, Some(10), Unit::Records, Duration::ZERO).starts_with("x: 100% "));
    assert_eq!(
        finished(
            "Loading the registry",
            3 << 20,
            Unit::Bytes,
            Duration::from_millis(500)
        ),
        "Loading the registry: done, 3.0 MB in 0.5 s."
    );
}

#[test]
fn counts_from_several_threads_and_finishes_once() {
    let p = Progress::start("Counting", Some(4000), Unit::Records);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let p = p.clone();
            s.spawn(move || (0..1000).for_each(|_| p.inc(1)));
        }
    });
    assert_eq!(p.shared.done.load(Ordering::Relaxed), 4000);
    p.finish();
    // A second finish finds no ticker to stop, and says the same.
    p.finish();
}
