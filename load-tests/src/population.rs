//! Who sends, to which devices. The Users are the synthetic registry's pool of suppliers and
//! network operators (so that each is registered for the premises it reads) plus a number of
//! Other Users; the devices are the synthetic registry's, computed from their index, so a plan
//! can address any of 30 million devices without holding them.

use std::collections::HashMap;

use dccgw::domain::{DeviceId, DeviceStatus, SmkiRole, UserId, UserRole};
use dccgw::state::generate::Synthetic;

/// The synthetic registry's User pools (`dccgw::state::generate`): import suppliers, gas
/// suppliers, distributors, transporters. A test checks that every registered User it deals out
/// is one of these.
pub const POOLS: [(UserRole, u64); 4] = [
    (UserRole::ImportSupplier, 40),
    (UserRole::GasSupplier, 30),
    (UserRole::ElectricityDistributor, 14),
    (UserRole::GasTransporter, 8),
];

/// Devices per premises in the synthetic registry, and the offsets of its meters.
const PER_PREMISES: u64 = dccgw::state::generate::DEVICES_PER_PREMISES;
const ESME: u64 = 1;
const GSME: u64 = 2;

/// The seed the load tool generates registries with.
pub const REGISTRY_SEED: u64 = 42;

/// One User the generator plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadUser {
    pub id: UserId,
    pub role: UserRole,
}

impl LoadUser {
    /// The organisation role code its TLS client certificate carries.
    pub fn tls_role(&self) -> SmkiRole {
        match self.role {
            UserRole::ElectricityDistributor | UserRole::GasTransporter => {
                SmkiRole::NetworkOperator
            }
            UserRole::OtherUser => SmkiRole::Other,
            _ => SmkiRole::Supplier,
        }
    }

    /// Whether it holds a Digital Signing key (suppliers and network operators: the roles that
    /// sign critical commands).
    pub fn signs_digitally(&self) -> bool {
        matches!(
            self.tls_role(),
            SmkiRole::Supplier | SmkiRole::NetworkOperator
        )
    }

    /// A directory and party name: the User ID in compact hex.
    pub fn name(&self) -> String {
        self.id.to_compact_hex()
    }
}

/// Whether a population with `other_users` OU Users has any User in `role`.
pub fn has_users(role: UserRole, other_users: u32) -> bool {
    role == UserRole::OtherUser && other_users > 0 || POOLS.iter().any(|(r, _)| *r == role)
}

/// Whether the population's Users acting in `role` hold Digital Signing keys.
pub fn signs_digitally(role: UserRole) -> bool {
    POOLS.iter().any(|(r, _)| *r == role)
}

/// The `k`th Other User (IDs outside the synthetic pools' range).
pub fn other_user(k: u32) -> UserId {
    UserId::from_bytes((0x00DB_1234_5000_0000u64 | u64::from(k)).to_be_bytes())
}

#[derive(Clone, Debug)]
pub struct Population {
    pub spec: Synthetic,
    pub users: Vec<LoadUser>,
    index: HashMap<UserId, u32>,
    other_users: u32,
}

impl Population {
    /// The registry of `devices` devices (five per premises, one registration per device) and
    /// its Users, plus `other_users` OU Users.
    pub fn new(devices: u64, other_users: u32) -> Self {
        let spec = Synthetic {
            devices,
            registrations: devices.max(4 * devices.div_ceil(PER_PREMISES)),
            seed: REGISTRY_SEED,
        };
        let mut users = Vec::new();
        for (role, size) in POOLS {
            users.extend((0..size).map(|k| LoadUser {
                id: Synthetic::user(role, k),
                role,
            }));
        }
        users.extend((0..other_users).map(|k| LoadUser {
            id: other_user(k),
            role: UserRole::OtherUser,
        }));
        let index = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id, i as u32))
            .collect();
        Self {
            spec,
            users,
            index,
            other_users,
        }
    }

    pub fn index_of(&self, user: &UserId) -> Option<u32> {
        self.index.get(user).copied()
    }

    /// The User acting in `role` and its target device at premises `p`, if the target is
    /// Commissioned (the others would be refused E5, which is not the load we mean to offer).
    /// `r` picks among Other Users. Non-device requests use [`Self::any_user`].
    pub fn pick(&self, role: UserRole, p: u64, r: u64) -> Option<(u32, DeviceId)> {
        let premises = self.spec.premises();
        let p = p % premises;
        let (slot, kind) = match role {
            UserRole::ImportSupplier => (Some(0), ESME),
            UserRole::GasSupplier => (Some(1), GSME),
            UserRole::ElectricityDistributor => (Some(2), ESME),
            UserRole::GasTransporter => (Some(3), GSME),
            _ => (None, ESME),
        };
        let device_index = p * PER_PREMISES + kind;
        if device_index >= self.spec.devices {
            return None;
        }
        let device = self.spec.device(device_index);
        if device.status != DeviceStatus::Commissioned {
            return None;
        }
        let user = match slot {
            Some(slot) => {
                let (_, registration) = self.spec.registration(slot * premises + p);
                self.index_of(&registration.user)?
            }
            None => self.other(r)?,
        };
        Some((user, device.id))
    }

    /// Any User acting in `role` (for non-device requests), chosen by `r`.
    pub fn any_user(&self, role: UserRole, r: u64) -> Option<u32> {
        if role == UserRole::OtherUser {
            return self.other(r);
        }
        let (_, size) = POOLS.iter().find(|(p, _)| *p == role)?;
        self.index_of(&Synthetic::user(role, r % size))
    }

    fn other(&self, r: u64) -> Option<u32> {
        if self.other_users == 0 {
            return None;
        }
        self.index_of(&other_user((r % u64::from(self.other_users)) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_user_is_in_the_population() {
        let pop = Population::new(50_000, 4);
        let premises = pop.spec.premises();
        for j in (0..4 * premises).step_by(37) {
            let (_, r) = pop.spec.registration(j);
            assert!(pop.index_of(&r.user).is_some(), "{} missing", r.user);
        }
    }

    #[test]
    fn picks_are_registered_for_their_device_and_commissioned() {
        let pop = Population::new(10_000, 3);
        let mut picked = 0;
        for p in 0..pop.spec.premises() {
            for role in [
                UserRole::ImportSupplier,
                UserRole::GasSupplier,
                UserRole::ElectricityDistributor,
                UserRole::GasTransporter,
            ] {
                let Some((user, device)) = pop.pick(role, p, 0) else {
                    continue;
                };
                picked += 1;
                let u = &pop.users[user as usize];
                assert_eq!(u.role, role);
                let record = (0..pop.spec.devices)
                    .skip((p * PER_PREMISES) as usize)
                    .take(PER_PREMISES as usize)
                    .map(|i| pop.spec.device(i))
                    .find(|d| d.id == device)
                    .expect("the target is one of the premises' devices");
                assert_eq!(record.status, DeviceStatus::Commissioned);
            }
        }
        // About 2 % of devices are not Commissioned; nearly every pick succeeds.
        assert!(picked > 4 * pop.spec.premises() * 9 / 10, "{picked}");
    }

    #[test]
    fn other_users_are_distinct_from_the_pools() {
        let pop = Population::new(100, 5);
        assert_eq!(pop.users.len(), 92 + 5);
        let (user, _) = (0..20)
            .find_map(|p| pop.pick(UserRole::OtherUser, p, 3))
            .unwrap();
        assert_eq!(pop.users[user as usize].role, UserRole::OtherUser);
        assert_eq!(pop.users[user as usize].tls_role(), SmkiRole::Other);
        assert!(pop.any_user(UserRole::OtherUser, 9).is_some());
        assert!(Population::new(100, 0)
            .any_user(UserRole::OtherUser, 9)
            .is_none());
    }
}
