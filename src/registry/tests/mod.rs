mod change;

use super::*;
use crate::state::generate::{generate, Synthetic};
use crate::state::load::registry as load;

use std::path::Path;

const DEVICES: &str = "device_id,device_type,status,mpxn,chf_id,csp_region\n";
const REGS: &str = "mpxn,role,user_id,effective_from,effective_to\n";
const CHF: &str = "00-0D-6F-00-00-00-00-01";
const ESME: &str = "00-0D-6F-00-00-00-00-02";
const MPAN: &str = "1200023305967";

fn id(s: &str) -> DeviceId {
    s.parse().unwrap()
}

fn user(n: u8) -> UserId {
    UserId::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, n])
}

fn t(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn load_text(dir: &Path, devices: &str, regs: &str) -> Result<Snapshot, RegistryError> {
    let (d, r) = (dir.join("d.csv"), dir.join("r.csv"));
    std::fs::write(&d, devices).unwrap();
    std::fs::write(&r, regs).unwrap();
    load(&d, &r)
}

fn good_devices() -> String {
    format!(
        "# a comment\n{DEVICES}\
         {CHF},CHF,Commissioned,,,north\n\
         \x20 {ESME} , ESME ,Commissioned, {MPAN} ,{CHF}, north\n\
         \n\
         00-0D-6F-00-00-00-00-03,IHD,Pending,,{CHF},north\n"
    )
}

fn good_regs() -> String {
    format!(
        "{REGS}{MPAN},IS,{},2024-01-01T00:00:00Z,2024-06-01T00:00:00Z\n\
         {MPAN},IS,{},2024-06-01T00:00:00Z,\n\
         {MPAN},IS,{},2024-03-01T00:00:00+01:00,\n\
         # second supplier on the same meter, both open\n\
         {MPAN},ED,{},2014-01-01T00:00:00Z,\n",
        user(1),
        user(2),
        user(3),
        user(9)
    )
}

#[test]
fn loads_good_rows_and_looks_them_up() {
    let dir = tempfile::tempdir().unwrap();
    let snap = load_text(dir.path(), &good_devices(), &good_regs()).unwrap();
    assert_eq!((snap.device_count(), snap.registration_count()), (3, 4));
    let esme = snap.device(id(ESME)).unwrap();
    assert_eq!(
        esme,
        DeviceRecord {
            id: id(ESME),
            device_type: DeviceType::Esme,
            status: DeviceStatus::Commissioned,
            mpxn: Some(MPAN.parse().unwrap()),
            chf: Some(id(CHF)),
            region: CspRegion::North,
        }
    );
    assert_eq!(snap.device(id(CHF)).unwrap().chf, None);
    assert_eq!(snap.device(id("00-0D-6F-00-00-00-00-04")), None);

    let mpan: Mpxn = MPAN.parse().unwrap();
    let at: Vec<_> = snap.devices_at(mpan).map(|d| d.id).collect();
    assert_eq!(at, vec![id(ESME)]);
    let mut behind: Vec<_> = snap.devices_behind(id(CHF)).map(|d| d.id).collect();
    behind.sort();
    assert_eq!(behind, vec![id(ESME), id("00-0D-6F-00-00-00-00-03")]);
    assert_eq!(snap.devices_behind(id(ESME)).count(), 0);
    assert_eq!(snap.registrations(Mpxn::Mprn(123456)).count(), 0);
}

#[test]
fn registered_at_keeps_the_half_open_interval() {
    let dir = tempfile::tempdir().unwrap();
    let snap = load_text(dir.path(), &good_devices(), &good_regs()).unwrap();
    let mpan: Mpxn = MPAN.parse().unwrap();
    let is = |at: i64| -> Vec<UserId> {
        let mut v: Vec<_> = snap
            .registered_at(mpan, UserRole::ImportSupplier, at)
            .collect();
        v.sort();
        v
    };
    let june = t("2024-06-01T00:00:00Z");
    let march = t("2024-02-29T23:00:00Z"); // 2024-03-01T00:00:00+01:00
    assert_eq!(is(t("2023-12-31T23:59:59Z")), vec![]);
    assert_eq!(is(t("2024-01-01T00:00:00Z")), vec![user(1)]);
    assert_eq!(is(march - 1), vec![user(1)]);
    assert_eq!(
        is(march),
        vec![user(1), user(3)],
        "several import suppliers"
    );
    assert_eq!(is(june - 1), vec![user(1), user(3)]);
    assert_eq!(is(june), vec![user(2), user(3)], "to is exclusive");
    assert_eq!(is(t("9999-12-31T23:59:59Z")), vec![user(2), user(3)]);
    let ed: Vec<_> = snap
        .registered_at(mpan, UserRole::ElectricityDistributor, june)
        .collect();
    assert_eq!(ed, vec![user(9)]);
    assert_eq!(
        snap.registered_at(mpan, UserRole::GasSupplier, june)
            .count(),
        0
    );
    let all: Vec<_> = snap.registrations(mpan).collect();
    assert_eq!(all[0].to, Some(june));
    assert_eq!(all[1].to, None);
}

#[test]
fn each_bad_device_column_stops_the_load_at_its_line() {
    use RowProblem as P;
    let ok = format!("{ESME},ESME,Commissioned,{MPAN},{CHF},north");
    let cases: &[(&str, RowProblem)] = &[
        ("00-0D-6F,ESME,Commissioned,,,north", P::DeviceId),
        (
            "00-0D-6F-00-00-00-00-09,ELEC,Commissioned,,,north",
            P::DeviceType,
        ),
        ("00-0D-6F-00-00-00-00-09,IHD,Live,,,north", P::Status),
        ("00-0D-6F-00-00-00-00-09,ESME,Pending,12345,,north", P::Mpxn),
        (
            "00-0D-6F-00-00-00-00-09,ESME,Pending,123456,,north",
            P::MpxnKind,
        ),
        (
            "00-0D-6F-00-00-00-00-09,GSME,Pending,1200023305967,,north",
            P::MpxnKind,
        ),
        ("00-0D-6F-00-00-00-00-09,IHD,Pending,,00-0D,north", P::ChfId),
        (
            "00-0D-6F-00-00-00-00-09,CHF,Pending,1200023305967,,north",
            P::ChfBound,
        ),
        (
            "00-0D-6F-00-00-00-00-09,IHD,Pending,,00-0D-6F-00-00-00-00-09,north",
            P::OwnChf,
        ),
        ("00-0D-6F-00-00-00-00-09,IHD,Pending,,,west", P::Region),
        ("00-0D-6F-00-00-00-00-09,IHD,Pending,,", P::Shape),
        ("00-0D-6F-00-00-00-00-09,IHD,Pending,,,north,x", P::Shape),
        // cross-row faults, located by the second read
        (&ok, P::DuplicateDevice),
        (
            "00-0D-6F-00-00-00-00-09,IHD,Pending,,00-0D-6F-00-00-00-00-77,north",
            P::UnknownChf,
        ),
        (
            "00-0D-6F-00-00-00-00-09,IHD,Pending,,00-0D-6F-00-00-00-00-02,north",
            P::NotAChf,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (row, problem) in cases {
        // comment, header, CHF, ESME, blank, then the bad row on line 6, then a good one
        let text = format!(
            "# c\n{DEVICES}{CHF},CHF,Commissioned,,,north\n{ok}\n\n{row}\n\
             00-0D-6F-00-00-00-00-10,IHD,Pending,,,south\n"
        );
        match load_text(dir.path(), &text, REGS) {
            Err(RegistryError::Row {
                file: FileKind::Devices,
                line,
                problem: p,
                ..
            }) => assert_eq!((line, p), (6, *problem), "{row}"),
            other => panic!("{row}: {other:?}"),
        }
    }
}

#[test]
fn each_bad_registration_column_stops_the_load_at_its_line() {
    use RowProblem as P;
    let u = user(1);
    let cases: Vec<(String, RowProblem)> = vec![
        (format!("12345,IS,{u},2024-01-01T00:00:00Z,"), P::Mpxn),
        (format!("{MPAN},XX,{u},2024-01-01T00:00:00Z,"), P::Role),
        (format!("{MPAN},OU,{u},2024-01-01T00:00:00Z,"), P::Role),
        // A gas role on an electricity meter point, and the other way round.
        (format!("{MPAN},GS,{u},2024-01-01T00:00:00Z,"), P::RoleFuel),
        (format!("{MPAN},GT,{u},2024-01-01T00:00:00Z,"), P::RoleFuel),
        (format!("123456,IS,{u},2024-01-01T00:00:00Z,"), P::RoleFuel),
        (format!("123456,ED,{u},2024-01-01T00:00:00Z,"), P::RoleFuel),
        (format!("{MPAN},IS,90-B3,2024-01-01T00:00:00Z,"), P::UserId),
        (format!("{MPAN},IS,{u},2024-01-01,"), P::EffectiveFrom),
        (format!("{MPAN},IS,{u},,"), P::EffectiveFrom),
        (
            format!("{MPAN},IS,{u},2024-01-01T00:00:00Z,soon"),
            P::EffectiveTo,
        ),
        (
            format!("{MPAN},IS,{u},2024-01-01T00:00:00Z,2024-01-01T00:00:00Z"),
            P::EmptyInterval,
        ),
        (format!("{MPAN},IS,{u},2024-01-01T00:00:00Z"), P::Shape),
        (
            format!("{MPAN},IS,{u},2023-12-01T00:00:00Z,2024-02-01T00:00:00Z"),
            P::Overlap,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (row, problem) in cases {
        let text = format!("{REGS}{MPAN},IS,{u},2024-01-01T00:00:00Z,\n{row}\n");
        match load_text(dir.path(), &good_devices(), &text) {
            Err(RegistryError::Row {
                file: FileKind::Registrations,
                line,
                problem: p,
                ..
            }) => assert_eq!((line, p), (3, problem), "{row}"),
            other => panic!("{row}: {other:?}"),
        }
    }
    // The message names the file, the line and the column.
    let text = format!("{REGS}{MPAN},XX,{u},2024-01-01T00:00:00Z,\n");
    let e = load_text(dir.path(), &good_devices(), &text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("r.csv line 2, column 2 (role)"), "{e}");
}

#[test]
fn a_wrong_header_or_missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = "device_id,type,status,mpxn,chf_id,csp_region\n";
    let e = load_text(dir.path(), wrong, REGS).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Header { file: FileKind::Devices, found, .. }
            if found == wrong.trim()),
        "{e:?}"
    );
    // The message names the file and shows the header it expected.
    let text = e.to_string();
    assert!(text.contains("d.csv"), "{text}");
    assert!(
        text.contains("device_id,device_type,status,mpxn,chf_id,csp_region"),
        "{text}"
    );
    assert!(matches!(
        load_text(dir.path(), DEVICES, "# only a comment\n"),
        Err(RegistryError::Header {
            file: FileKind::Registrations,
            ..
        })
    ));
    let missing = dir.path().join("absent.csv");
    assert!(matches!(
        load(&missing, &missing),
        Err(RegistryError::Read { .. })
    ));
    // Headers alone make an empty snapshot.
    let snap = load_text(dir.path(), DEVICES, REGS).unwrap();
    assert_eq!((snap.device_count(), snap.registration_count()), (0, 0));
}

#[test]
fn generated_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Synthetic {
        devices: 1003,
        registrations: 1500,
        seed: 7,
    };
    let files = generate(dir.path(), &spec).unwrap();
    let snap = load(&files.devices, &files.registrations).unwrap();
    assert_eq!(snap.device_count(), 1003);
    assert_eq!(snap.registration_count(), 1500);
    for i in 0..spec.devices {
        let d = spec.device(i);
        assert_eq!(snap.device(d.id), Some(d));
    }
    for j in 0..spec.registrations {
        let (mpxn, r) = spec.registration(j);
        assert!(snap.registrations(mpxn).any(|x| x == r), "{j}");
        assert!(snap
            .registered_at(mpxn, r.role, r.from)
            .any(|u| u == r.user));
    }
    let p = 17;
    assert_eq!(snap.devices_behind(spec.device(p * 5).id).count(), 4);
    assert_eq!(snap.devices_at(Synthetic::mprn(p)).count(), 2);
}

/// Big enough to be cut into chunks read in parallel; a bad row deep in it keeps its line.
#[test]
fn line_numbers_survive_parallel_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Synthetic {
        devices: 30_000,
        registrations: 10,
        seed: 1,
    };
    let files = generate(dir.path(), &spec).unwrap();
    let text = std::fs::read_to_string(&files.devices).unwrap();
    assert!(text.len() as u64 > load::PARALLEL_FROM_BYTES);
    for bad_line in [3usize, 20_001, 30_002] {
        let mut lines: Vec<&str> = text.lines().collect();
        lines[bad_line - 1] = "00-0D-6F-00-00-00-00-09,IHD,Live,,,north";
        std::fs::write(&files.devices, lines.join("\n")).unwrap();
        match load(&files.devices, &files.registrations) {
            Err(RegistryError::Row { line, problem, .. }) => {
                assert_eq!((line, problem), (bad_line as u64, RowProblem::Status))
            }
            other => panic!("{other:?}"),
        }
    }
}

proptest::proptest! {
    /// The fast path for `YYYY-MM-DDTHH:MM:SSZ` agrees with the general RFC 3339 parser, and
    /// declines (rather than misreads) anything out of range.
    #[test]
    fn fast_instants_agree_with_the_general_parser(
        t in -62_135_596_800i64..253_402_300_799,
        y in 0u32..10_000, m in 0u32..14, d in 0u32..33, hh in 0u32..26, mm in 0u32..62, ss in 0u32..62,
    ) {
        use time::format_description::well_known::Rfc3339;
        let text = time::OffsetDateTime::from_unix_timestamp(t).unwrap().format(&Rfc3339).unwrap();
        proptest::prop_assert_eq!(load::utc_seconds(text.as_bytes()), Some(t));
        let text = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z");
        let general = time::OffsetDateTime::parse(&text, &Rfc3339).ok().map(|t| t.unix_timestamp());
        if let Some(fast) = load::utc_seconds(text.as_bytes()) {
            proptest::prop_assert_eq!(Some(fast), general);
        }
    }
}

/// The first ```csv block of a schema document.
fn example(doc: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(doc);
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("```csv\n").unwrap() + 7;
    text[start..][..text[start..].find("```").unwrap()].to_owned()
}

#[test]
fn the_schema_examples_load() {
    let dir = tempfile::tempdir().unwrap();
    let snap = load_text(
        dir.path(),
        &example("devices.md"),
        &example("registrations.md"),
    )
    .unwrap();
    assert_eq!((snap.device_count(), snap.registration_count()), (5, 6));
    let mpan: Mpxn = MPAN.parse().unwrap();
    let june = t("2024-06-01T00:00:00Z");
    let mut is: Vec<_> = snap
        .registered_at(mpan, UserRole::ImportSupplier, june - 1)
        .collect();
    is.sort();
    assert_eq!(is, vec![user(1), user(3)]);
    assert_eq!(snap.devices_at(Mpxn::Mprn(3_453_612)).count(), 2);
}

/// Manufacturer and model: the optional columns, interned; the premises an inventory reports;
/// a live model change, kept by an upsert and by compaction.
#[test]
fn models_load_and_follow_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ihd = "00-0D-6F-00-00-00-00-03";
    let devices = format!(
        "device_id,device_type,status,mpxn,chf_id,csp_region,manufacturer,model\n\
         {CHF},CHF,Commissioned,,,north,HubCo,H1\n\
         {ESME},ESME,Commissioned,{MPAN},{CHF},north,Acme,E1\n\
         {ihd},IHD,Pending,,{CHF},north,,\n\
         00-0D-6F-00-00-00-00-04,GSME,Commissioned,3453612,{CHF},north,Acme,E1\n"
    );
    let snap = load_text(dir.path(), &devices, REGS).unwrap();
    let named = |s: &Snapshot, d: &str| {
        s.model(id(d))
            .map(|m| format!("{}/{}", m.manufacturer, m.model))
    };
    assert_eq!(named(&snap, CHF).as_deref(), Some("HubCo/H1"));
    assert_eq!(named(&snap, ESME).as_deref(), Some("Acme/E1"));
    assert_eq!(named(&snap, ihd), None);
    let premises: Vec<DeviceId> = snap.premises(id(ihd)).iter().map(|d| d.id).collect();
    let want = [CHF, ESME, ihd, "00-0D-6F-00-00-00-00-04"].map(id);
    assert_eq!(premises, want);
    assert_eq!(snap.premises(id(CHF)).len(), 4);
    assert!(snap.premises(id("00-0D-6F-00-00-00-00-99")).is_empty());

    let set = Change::SetDeviceModel {
        device: id(ihd),
        manufacturer: "Displays Ltd".into(),
        model: "D2".into(),
    };
    let mut esme = snap.device(id(ESME)).unwrap();
    esme.status = DeviceStatus::Suspended;
    let changed = snap.apply_all(&[set, Change::UpsertDevice(esme)]).unwrap();
    assert_eq!(named(&snap, ihd), None, "the old snapshot is unchanged");
    for s in [&changed, &changed.compact()] {
        assert_eq!(named(s, ihd).as_deref(), Some("Displays Ltd/D2"));
        assert_eq!(
            named(s, ESME).as_deref(),
            Some("Acme/E1"),
            "kept by the upsert"
        );
        assert_eq!(named(s, CHF).as_deref(), Some("HubCo/H1"));
    }
    let bad = Change::SetDeviceModel {
        device: id(ihd),
        manufacturer: "x".repeat(31),
        model: "D2".into(),
    };
    assert_eq!(
        snap.apply(&bad).unwrap_err(),
        ChangeError::Invalid(RowProblem::Model)
    );

    // A name over the schema's 30 characters stops the load at its line; so does a row whose
    // model columns are missing where the header has them only if it has neither 6 nor 8 fields.
    let long = devices.replace("HubCo", &"H".repeat(31));
    match load_text(dir.path(), &long, REGS) {
        Err(RegistryError::Row {
            line: 2,
            problem: RowProblem::Model,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let seven = devices.replace(",HubCo,H1", ",HubCo");
    match load_text(dir.path(), &seven, REGS) {
        Err(RegistryError::Row {
            line: 2,
            problem: RowProblem::Shape,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// At most 255 distinct pairs, from the file or from changes.
#[test]
fn the_model_table_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut devices = format!(
        "device_id,device_type,status,mpxn,chf_id,csp_region,manufacturer,model\n\
         {CHF},CHF,Commissioned,,,north,,\n"
    );
    for k in 0..MAX_MODELS as u64 {
        let d = DeviceId::from_bytes((0x0100_0000_0000_0000 + k).to_be_bytes());
        devices.push_str(&format!("{d},IHD,Pending,,{CHF},north,M,{k}\n"));
    }
    let full = load_text(dir.path(), &devices, REGS).unwrap();
    let fresh = |model: &str| Change::SetDeviceModel {
        device: id(CHF),
        manufacturer: "M".into(),
        model: model.into(),
    };
    assert_eq!(
        full.apply(&fresh("new")).unwrap_err(),
        ChangeError::TooManyModels
    );
    assert!(full.apply(&fresh("7")).is_ok(), "a pair already held fits");
    devices.push_str(&format!(
        "{},IHD,Pending,,{CHF},north,M,new\n",
        id("00-0D-6F-00-00-00-00-09")
    ));
    match load_text(dir.path(), &devices, REGS) {
        Err(RegistryError::Row {
            problem: RowProblem::TooManyModels,
            ..
        })
        | Err(RegistryError::TooManyModels) => {}
        other => panic!("{other:?}"),
    }
}
