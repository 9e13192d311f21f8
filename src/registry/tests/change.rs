//! Live changes: visible in the new snapshot only, refused when they break a rule, stored as JSON,
//! and (proptest) any sequence of them agrees with a naive model, before and after compaction.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::*;
use crate::state::generate::{self, generate, Synthetic};
use crate::state::load::registry as load;

fn small() -> (Synthetic, Snapshot) {
    crate::testing::fixture::synthetic(40, 40, 3)
}

#[test]
fn a_change_is_seen_by_the_new_snapshot_and_not_the_old() {
    let (spec, old) = small();
    let esme = spec.device(1);
    let new = old
        .apply(&Change::SetDeviceStatus {
            device: esme.id,
            status: DeviceStatus::Suspended,
        })
        .unwrap();
    assert_eq!(new.device(esme.id).unwrap().status, DeviceStatus::Suspended);
    assert_eq!(old.device(esme.id), Some(esme));
    assert_eq!(new.device_count(), old.device_count());

    // Change of supplier, atomically: end the old registration and add the new one.
    let (mpan, current) = spec.registration(0);
    let at = current.from + 86_400;
    let incoming = Synthetic::user(UserRole::ImportSupplier, 39);
    let new = new
        .apply_all(&[
            Change::EndRegistration {
                mpxn: mpan,
                role: UserRole::ImportSupplier,
                user: current.user,
                at,
            },
            Change::AddRegistration {
                mpxn: mpan,
                registration: Registration {
                    role: UserRole::ImportSupplier,
                    user: incoming,
                    from: at,
                    to: None,
                },
            },
        ])
        .unwrap();
    let is = |s: &Snapshot, t| -> Vec<UserId> {
        s.registered_at(mpan, UserRole::ImportSupplier, t).collect()
    };
    assert_eq!(is(&new, at - 1), vec![current.user]);
    assert_eq!(is(&new, at), vec![incoming]);
    assert_eq!(is(&old, at), vec![current.user]);
    assert_eq!(new.registration_count(), old.registration_count() + 1);

    let compacted = new.compact();
    assert_eq!(compacted.overlay_len(), 0);
    assert_eq!(is(&compacted, at), vec![incoming]);
    assert_eq!(compacted.device(esme.id), new.device(esme.id));
    assert_eq!(compacted.registration_count(), new.registration_count());
}

#[test]
fn changes_that_break_a_rule_are_refused() {
    let (spec, snap) = small();
    let chf = spec.device(0);
    let ihd = spec.device(4);
    let nobody = DeviceId::from_bytes([1; 8]);
    let (mpan, current) = spec.registration(0);
    let cases: Vec<(Change, ChangeError)> = vec![
        (
            Change::SetDeviceStatus {
                device: nobody,
                status: DeviceStatus::Commissioned,
            },
            ChangeError::UnknownDevice(nobody),
        ),
        (
            Change::UpsertDevice(DeviceRecord {
                chf: Some(nobody),
                ..ihd
            }),
            ChangeError::Invalid(RowProblem::UnknownChf),
        ),
        (
            Change::UpsertDevice(DeviceRecord {
                chf: Some(ihd.id),
                id: nobody,
                ..ihd
            }),
            ChangeError::Invalid(RowProblem::NotAChf),
        ),
        (
            Change::UpsertDevice(DeviceRecord {
                device_type: DeviceType::Ihd,
                ..chf
            }),
            ChangeError::ChfInUse { device: chf.id },
        ),
        (
            Change::UpsertDevice(DeviceRecord {
                mpxn: Some(mpan),
                ..chf
            }),
            ChangeError::Invalid(RowProblem::ChfBound),
        ),
        (
            Change::AddRegistration {
                mpxn: mpan,
                registration: Registration {
                    role: UserRole::OtherUser,
                    ..current
                },
            },
            ChangeError::Invalid(RowProblem::Role),
        ),
        (
            // A gas supplier registered on an electricity meter point.
            Change::AddRegistration {
                mpxn: mpan,
                registration: Registration {
                    role: UserRole::GasSupplier,
                    ..current
                },
            },
            ChangeError::Invalid(RowProblem::RoleFuel),
        ),
        (
            Change::AddRegistration {
                mpxn: mpan,
                registration: Registration {
                    from: current.from + 1,
                    ..current
                },
            },
            ChangeError::Invalid(RowProblem::Overlap),
        ),
        (
            Change::AddRegistration {
                mpxn: mpan,
                registration: Registration {
                    to: Some(current.from - 1),
                    from: current.from - 1,
                    ..current
                },
            },
            ChangeError::Invalid(RowProblem::EmptyInterval),
        ),
        (
            Change::EndRegistration {
                mpxn: mpan,
                role: UserRole::ImportSupplier,
                user: current.user,
                at: current.from - 1,
            },
            ChangeError::NoSuchRegistration {
                role: UserRole::ImportSupplier,
                user: current.user,
                at: current.from - 1,
            },
        ),
    ];
    for (change, expected) in cases {
        assert_eq!(snap.apply(&change).unwrap_err(), expected, "{change:?}");
    }
    // All or nothing: a good change followed by a bad one leaves nothing.
    let batch = [
        Change::SetDeviceStatus {
            device: ihd.id,
            status: DeviceStatus::Withdrawn,
        },
        Change::SetDeviceStatus {
            device: nobody,
            status: DeviceStatus::Withdrawn,
        },
    ];
    assert!(snap.apply_all(&batch).is_err());
    assert_eq!(snap.device(ihd.id), Some(ihd));
}

#[test]
fn changes_are_stored_as_json() {
    let text = r#"{"change":"add_registration","mpxn":"1200023305967",
        "registration":{"role":"IS","user":"90-B3-D5-1F-30-01-00-00","from":1704067200,"to":null}}"#;
    let change: Change = serde_json::from_str(text).unwrap();
    assert_eq!(
        change,
        Change::AddRegistration {
            mpxn: Mpxn::Mpan(1_200_023_305_967),
            registration: Registration {
                role: UserRole::ImportSupplier,
                user: "90-B3-D5-1F-30-01-00-00".parse().unwrap(),
                from: 1_704_067_200,
                to: None,
            },
        }
    );
    let (spec, _) = small();
    for change in [
        Change::UpsertDevice(spec.device(1)),
        Change::UpsertDevice(spec.device(0)),
        Change::SetDeviceStatus {
            device: spec.device(2).id,
            status: DeviceStatus::Recovered,
        },
        Change::EndRegistration {
            mpxn: Mpxn::Mprn(123_456),
            role: UserRole::GasTransporter,
            user: spec.device(3).id,
            at: -5,
        },
    ] {
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(
            serde_json::from_str::<Change>(&json).unwrap(),
            change,
            "{json}"
        );
    }
    let unknown =
        r#"{"change":"set_device_status","device":"00-0D-6F-00-00-00-00-01","status":"Gone"}"#;
    assert!(serde_json::from_str::<Change>(unknown).is_err());
}

/// The obvious implementation: whole records in ordered maps.
#[derive(Default)]
struct Model {
    devices: BTreeMap<DeviceId, DeviceRecord>,
    regs: BTreeMap<Mpxn, Vec<Registration>>,
    models: BTreeMap<DeviceId, DeviceModel>,
}

impl Model {
    fn of(spec: &Synthetic) -> Self {
        let mut m = Model::default();
        for i in 0..spec.devices {
            let d = spec.device(i);
            m.devices.insert(d.id, d);
        }
        for j in 0..spec.registrations {
            let (mpxn, r) = spec.registration(j);
            m.regs.entry(mpxn).or_default().push(r);
        }
        m
    }

    /// Whether the change is allowed; applies it if so.
    fn apply(&mut self, c: &Change) -> bool {
        let end = |r: &Registration| r.to.unwrap_or(i64::MAX);
        match *c {
            Change::UpsertDevice(d) => {
                let chf_ok = d.chf.is_none_or(|c| {
                    self.devices
                        .get(&c)
                        .is_some_and(|c| c.device_type == DeviceType::Chf)
                });
                let in_use = d.device_type != DeviceType::Chf
                    && self.devices.values().any(|x| x.chf == Some(d.id));
                if check_device(&d).is_err() || !chf_ok || in_use {
                    return false;
                }
                self.devices.insert(d.id, d);
            }
            Change::SetDeviceStatus { device, status } => match self.devices.get_mut(&device) {
                Some(d) => d.status = status,
                None => return false,
            },
            Change::SetDeviceModel {
                device,
                ref manufacturer,
                ref model,
            } => match DeviceModel::new(manufacturer, model) {
                Ok(m) if self.devices.contains_key(&device) => {
                    self.models.insert(device, m);
                }
                _ => return false,
            },
            Change::AddRegistration {
                mpxn,
                registration: r,
            } => {
                let list = self.regs.entry(mpxn).or_default();
                let clash = list.iter().any(|x| {
                    x.role == r.role && x.user == r.user && x.from < end(&r) && r.from < end(x)
                });
                if check_registration(mpxn, &r).is_err() || clash {
                    return false;
                }
                list.push(r);
            }
            Change::EndRegistration {
                mpxn,
                role,
                user,
                at,
            } => {
                let list = self.regs.entry(mpxn).or_default();
                let Some(i) = list
                    .iter()
                    .position(|x| x.role == role && x.user == user && x.covers(at))
                else {
                    return false;
                };
                if list[i].from == at {
                    list.remove(i);
                } else {
                    list[i].to = Some(at);
                }
            }
        }
        true
    }

    fn assert_same(&self, s: &Snapshot, probes: &[DeviceId], mpxns: &[Mpxn]) {
        assert_eq!(s.device_count(), self.devices.len());
        let total: usize = self.regs.values().map(Vec::len).sum();
        assert_eq!(s.registration_count(), total);
        for id in probes {
            assert_eq!(s.device(*id), self.devices.get(id).copied());
            assert_eq!(s.model(*id), self.models.get(id));
            let mut behind: Vec<_> = s.devices_behind(*id).collect();
            behind.sort_by_key(|d| d.id);
            let want: Vec<_> = self
                .devices
                .values()
                .filter(|d| d.chf == Some(*id))
                .copied()
                .collect();
            assert_eq!(behind, want);
        }
        for m in mpxns {
            let mut got: Vec<_> = s.registrations(*m).collect();
            let mut want = self.regs.get(m).cloned().unwrap_or_default();
            got.sort_by_key(|r| (r.role, r.user, r.from));
            want.sort_by_key(|r| (r.role, r.user, r.from));
            assert_eq!(got, want);
            let mut at: Vec<_> = s.devices_at(*m).collect();
            at.sort_by_key(|d| d.id);
            let want: Vec<_> = self
                .devices
                .values()
                .filter(|d| d.mpxn == Some(*m))
                .copied()
                .collect();
            assert_eq!(at, want);
        }
    }
}

const PREMISES: u64 = 8; // 40 devices

fn device_id() -> impl Strategy<Value = DeviceId> {
    (0..PREMISES + 2, 0..5u64)
        .prop_map(|(p, k)| DeviceId::from_bytes((0x000D_6F00_0000_0000 | p << 3 | k).to_be_bytes()))
}

fn mpxn() -> impl Strategy<Value = Mpxn> {
    (0..PREMISES + 2, any::<bool>()).prop_map(|(p, e)| {
        if e {
            Synthetic::mpan(p)
        } else {
            Synthetic::mprn(p)
        }
    })
}

fn role() -> impl Strategy<Value = UserRole> {
    prop::sample::select(&UserRole::ALL[..])
}

fn user() -> impl Strategy<Value = UserId> {
    (0..3u64).prop_map(|k| Synthetic::user(UserRole::ImportSupplier, k))
}

fn instant() -> impl Strategy<Value = i64> {
    (0..8i64).prop_map(|d| generate::EPOCH + d * 100 * 86_400)
}

fn change() -> impl Strategy<Value = Change> {
    let device = (
        device_id(),
        prop::sample::select(DeviceType::ALL),
        prop::sample::select(DeviceStatus::ALL),
        prop::option::of(mpxn()),
        prop::option::of(device_id()),
        prop::sample::select(&CspRegion::ALL[..]),
    )
        .prop_map(|(id, device_type, status, mpxn, chf, region)| {
            Change::UpsertDevice(DeviceRecord {
                id,
                device_type,
                status,
                mpxn,
                chf,
                region,
            })
        });
    let registration = (role(), user(), instant(), prop::option::of(instant())).prop_map(
        |(role, user, from, to)| Registration {
            role,
            user,
            from,
            to,
        },
    );
    let model = (
        device_id(),
        prop::sample::select(
            &[
                "",
                "Acme",
                "Beta & Co",
                "a name far longer than thirty characters",
            ][..],
        ),
        prop::sample::select(&["", "E1", "G4"][..]),
    )
        .prop_map(|(device, manufacturer, model)| Change::SetDeviceModel {
            device,
            manufacturer: manufacturer.into(),
            model: model.into(),
        });
    prop_oneof![
        device,
        model,
        (device_id(), prop::sample::select(DeviceStatus::ALL))
            .prop_map(|(device, status)| Change::SetDeviceStatus { device, status }),
        (mpxn(), registration)
            .prop_map(|(mpxn, registration)| Change::AddRegistration { mpxn, registration }),
        (mpxn(), role(), user(), instant()).prop_map(|(mpxn, role, user, at)| {
            Change::EndRegistration {
                mpxn,
                role,
                user,
                at,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_changes_agree_with_a_naive_model(changes in prop::collection::vec(change(), 0..40)) {
        let spec = Synthetic { devices: PREMISES * 5, registrations: PREMISES * 5, seed: 11 };
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path(), &spec).unwrap();
        let mut snap = load(&files.devices, &files.registrations).unwrap();
        let mut model = Model::of(&spec);
        for c in &changes {
            match snap.apply(c) {
                Ok(next) => {
                    prop_assert!(model.apply(c), "snapshot took {:?}, model refused", c);
                    snap = next;
                }
                Err(_) => prop_assert!(!model.apply(c), "snapshot refused {:?}", c),
            }
        }
        let probes: Vec<DeviceId> = (0..PREMISES + 2)
            .flat_map(|p| (0..5).map(move |k| (p, k)))
            .map(|(p, k)| DeviceId::from_bytes((0x000D_6F00_0000_0000 | p << 3 | k).to_be_bytes()))
            .collect();
        let mpxns: Vec<Mpxn> = (0..PREMISES + 2)
            .flat_map(|p| [Synthetic::mpan(p), Synthetic::mprn(p)])
            .collect();
        model.assert_same(&snap, &probes, &mpxns);
        model.assert_same(&snap.compact(), &probes, &mpxns);
    }
}
