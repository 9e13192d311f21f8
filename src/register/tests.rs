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
