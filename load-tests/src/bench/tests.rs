use super::parts::check_references;
use super::BenchError;

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
