use super::parts::check_references;
use super::soak::windows;
use super::BenchError;
use crate::scenario::{Load, Step};

#[test]
fn a_soak_is_held_in_windows_of_its_own_length() {
    let steps = |l: Load| match l {
        Load::Steps { steps } => steps,
        other => panic!("{other:?}"),
    };
    let s = steps(windows(900.0, 600.0, 60.0));
    assert_eq!(s.len(), 10);
    assert!(s.iter().all(|w| *w
        == Step {
            rate: 900.0,
            duration_s: 60.0
        }));
    // The last window is what remains.
    let s = steps(windows(10.0, 150.0, 60.0));
    let lengths: Vec<f64> = s.iter().map(|w| w.duration_s).collect();
    assert_eq!(lengths, [60.0, 60.0, 30.0]);
    // No window length: one window.
    assert_eq!(steps(windows(10.0, 5.0, 0.0)).len(), 1);
    assert_eq!(windows(10.0, 150.0, 60.0).duration_s(), 150.0);
}

#[test]
fn a_missing_reference_server_is_named_with_its_package_before_anything_starts() {
    let empty = tempfile::tempdir().unwrap();
    let path = std::env::join_paths([empty.path()]).unwrap();
    let refs = vec!["hyper".to_owned(), "nginx".to_owned()];
    let e = check_references(&refs, Some(&path)).unwrap_err();
    assert!(
        matches!(
            &e,
            BenchError::MissingProgram {
                program: "nginx",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("nginx-light"), "{e}");

    // With an `nginx` on the path, and with only the built-in reference, nothing is missing.
    std::fs::write(empty.path().join("nginx"), "").unwrap();
    check_references(&refs, Some(&path)).unwrap();
    check_references(&["hyper".to_owned()], None).unwrap();
    assert!(matches!(
        check_references(&["apache".to_owned()], Some(&path)),
        Err(BenchError::UnknownRef(_))
    ));
}
