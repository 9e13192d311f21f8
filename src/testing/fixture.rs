//! Test support, not gateway code: a small fleet (comms hubs with an electricity and a gas meter
//! behind each), a party register with a supplier and a network operator registered for every
//! meter point, permits obtained from the real access control, and broker keys made by the dev
//! PKI. Used by the unit tests of routing, the dispatcher and the simulator, and by
//! `tests/commshub.rs`. Panics on set-up failures: it only ever builds fixed, known-good data.

use time::OffsetDateTime;

use crate::auth::{authorize, AccessRequest, Permit};
use crate::catalogue::Catalogue;
use crate::domain::{
    CommandVariant, DeviceId, DeviceStatus, DeviceType, Eui64, Mpxn, RequestId, SmkiRole, Srv,
    UserId, DCC_ID,
};
use crate::pki::{Ca, LeafSpec, Usage, Validity};
use crate::register::PartyRegister;
use crate::registry::{Change, CspRegion, DeviceRecord, Registration, Snapshot};
use crate::routing::{Command, CommandSigner, CommandVerifier, SignedCommand};

pub const SUPPLIER: UserId = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]);
pub const NETWORK_OPERATOR: UserId = Eui64::from_bytes([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0, 0]);
/// Registrations start here (unix seconds).
pub const T0: i64 = 1_700_000_000;

/// Hubs, meters, register and registrations.
pub struct Fleet {
    pub snapshot: Snapshot,
    pub register: PartyRegister,
    pub hubs: Vec<DeviceId>,
    pub esmes: Vec<DeviceId>,
    pub gsmes: Vec<DeviceId>,
}

fn dev(prefix: u8, i: u32) -> DeviceId {
    let b = i.to_be_bytes();
    Eui64::from_bytes([0x00, 0xDB, 0x12, prefix, b[0], b[1], b[2], b[3]])
}

impl Fleet {
    /// `hubs` comms hubs, each with one ESME (MPAN) and one GSME (MPRN) behind it, all
    /// commissioned; the supplier is IS and GS, the network operator ED and GT, from `T0`.
    pub fn new(hubs: u32) -> Self {
        let mut changes = Vec::new();
        let (mut hub_ids, mut esmes, mut gsmes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..hubs {
            let chf = dev(0x03, i);
            let esme = dev(0x01, i);
            let gsme = dev(0x02, i);
            let mpan = Mpxn::Mpan(1_200_000_000_000 + u64::from(i));
            let mprn = Mpxn::Mprn(3_000_000 + u64::from(i));
            let record = |id, device_type, mpxn, chf| DeviceRecord {
                id,
                device_type,
                status: DeviceStatus::Commissioned,
                mpxn,
                chf,
                region: CspRegion::Central,
            };
            changes.push(Change::UpsertDevice(record(
                chf,
                DeviceType::Chf,
                None,
                None,
            )));
            changes.push(Change::UpsertDevice(record(
                esme,
                DeviceType::Esme,
                Some(mpan),
                Some(chf),
            )));
            changes.push(Change::UpsertDevice(record(
                gsme,
                DeviceType::Gsme,
                Some(mprn),
                Some(chf),
            )));
            use crate::domain::UserRole::*;
            for (mpxn, role, user) in [
                (mpan, ImportSupplier, SUPPLIER),
                (mpan, ElectricityDistributor, NETWORK_OPERATOR),
                (mprn, GasSupplier, SUPPLIER),
                (mprn, GasTransporter, NETWORK_OPERATOR),
            ] {
                changes.push(Change::AddRegistration {
                    mpxn,
                    registration: Registration {
                        role,
                        user,
                        from: T0,
                        to: None,
                    },
                });
            }
            hub_ids.push(chf);
            esmes.push(esme);
            gsmes.push(gsme);
        }
        let snapshot = Snapshot::empty()
            .apply_all(&changes)
            .expect("fixture changes are consistent");
        let register = PartyRegister::parse(&format!(
            "user_id,party_id,party_name,roles,status,response_url\n\
             {SUPPLIER},SUP1,Supplier,IS|GS,active,\n\
             {NETWORK_OPERATOR},NO1,Network operator,ED|GT,active,\n"
        ))
        .expect("fixture register parses");
        Self {
            snapshot,
            register,
            hubs: hub_ids,
            esmes,
            gsmes,
        }
    }

    /// The permit access control gives `user` for `srv` on `device` at `T0 + 1`.
    pub fn permit(&self, user: UserId, device: DeviceId, srv: &str) -> Permit {
        let srv: Srv = srv.parse().expect("fixture SRV");
        let service = Catalogue::builtin().get(&srv).expect("SRV in catalogue");
        let req = AccessRequest {
            originator: user,
            target: device,
            service,
            at: T0 + 1,
        };
        authorize(&req, &self.register, &self.snapshot).expect("fixture request is admitted")
    }

    /// The GBCS command the gateway would send for `srv` to `device` with `counter`: the body
    /// encoding of an empty body, unsigned, behind the DCC's MAC header.
    pub fn gbcs(&self, device: DeviceId, srv: &str, counter: u64) -> Vec<u8> {
        use crate::gbcs::command::{seal, target_of, NO_PUBLIC_CODE};
        use crate::gbcs::usecase::{body, command_frame, Parties};
        let srv: Srv = srv.parse().expect("fixture SRV");
        let device_type = self
            .snapshot
            .device(device)
            .map_or(DeviceType::Esme, |d| d.device_type);
        let code = crate::gbcs::Table::builtin()
            .use_case_for(srv, target_of(device_type))
            .and_then(|u| u.message_code())
            .unwrap_or(NO_PUBLIC_CODE);
        let parties = Parties {
            user: SUPPLIER,
            device,
            counter,
        };
        let content = body::command_content(srv, b"<sr:Fixture></sr:Fixture>").expect("small");
        seal(command_frame(&parties, code, content, false)).expect("small")
    }

    /// A signed CV1 command from the supplier to `device` for `srv` with `counter`.
    pub fn command(
        &self,
        signer: &CommandSigner,
        device: DeviceId,
        srv: &str,
        counter: u64,
        execute_at: Option<i64>,
    ) -> SignedCommand {
        let permit = self.permit(SUPPLIER, device, srv);
        let id = RequestId {
            originator: SUPPLIER,
            target: device,
            counter,
        };
        let variant = CommandVariant::try_from(1).expect("1 is a command variant");
        let payload = self.gbcs(device, &permit.srv().to_string(), counter);
        let cmd = Command::from_permit(&permit, id, variant, execute_at, payload)
            .expect("fixture command");
        signer.sign(&cmd).expect("signing works")
    }

    /// `n` signed 4.1.1 commands from the supplier, counters `1..=n`, spread over the ESMEs,
    /// each with its RequestID.
    pub fn commands(&self, signer: &CommandSigner, n: u64) -> Vec<(RequestId, SignedCommand)> {
        (1..=n)
            .map(|i| {
                let device = self.esmes[(i as usize) % self.esmes.len()];
                let c = self.command(signer, device, "4.1.1", i, None);
                let id = c.header().expect("a fixture command reads").request_id;
                (id, c)
            })
            .collect()
    }
}

/// A broker key pair (role `04`) from a fresh dev CA: its signer, and a verifier trusting it.
pub fn broker() -> (CommandSigner, CommandVerifier, String) {
    let issued = issue(SmkiRole::AccessControlBroker);
    let signer = broker_signer(&issued.0, &issued.1).expect("fresh broker key loads");
    let verifier = CommandVerifier::new(&[issued.1.as_bytes()]).expect("broker cert trusted");
    (signer, verifier, issued.1)
}

/// A command signer from a broker key and certificate (PEM).
pub fn broker_signer(key: &str, cert: &str) -> Result<CommandSigner, crate::signer::SignerError> {
    let (key_name, cert_name) = (std::path::Path::new("key"), std::path::Path::new("cert"));
    let signer = crate::signer::Signer::from_pem(
        (key_name, key.as_bytes()),
        (cert_name, cert.as_bytes()),
        None,
    )?;
    let identity = signer.identity().clone();
    CommandSigner::new(Box::new(signer), &identity).map_err(|source| {
        crate::signer::SignerError::Broker {
            path: cert_name.to_owned(),
            source,
        }
    })
}

/// A fresh key and certificate (PKCS#8 PEM, certificate PEM) with `role` from its own CA.
pub fn issue(role: SmkiRole) -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let ca = Ca::generate("fixture IA", Validity::days_from(now, 10)).expect("CA");
    let issued = ca
        .issue(&LeafSpec::new(
            role,
            DCC_ID,
            Usage::XmlSigning,
            Validity::days_from(now, 10),
        ))
        .expect("leaf");
    (issued.key_pkcs8_pem, issued.cert_pem)
}

/// A synthetic registry (`state::generate`) of `devices` devices and `registrations`
/// registrations, written to a temporary directory and loaded (unit tests only).
#[cfg(test)]
pub fn synthetic(
    devices: u64,
    registrations: u64,
    seed: u64,
) -> (crate::state::generate::Synthetic, crate::registry::Snapshot) {
    let spec = crate::state::generate::Synthetic {
        devices,
        registrations,
        seed,
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = crate::state::generate::generate(dir.path(), &spec).expect("generated");
    let snapshot =
        crate::state::load::registry(&files.devices, &files.registrations).expect("loaded");
    (spec, snapshot)
}
