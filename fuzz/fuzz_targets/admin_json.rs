//! The admin API's JSON on arbitrary bytes: a batch of registration changes and a batch of User
//! changes, as the admin listener and the change journals read them. Nothing may panic; a batch
//! that parses writes back to JSON that parses to the same batch; a registration batch applies
//! to a small registry or is refused, and a User batch likewise to an empty register.
#![no_main]

use dccgw::certstore::CertStore;
use dccgw::register::{apply_user_changes, PartyRegister, UserChange};
use dccgw::registry::{Change, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<Vec<Change>>(data) {
        let again = serde_json::to_vec(&batch).expect("a parsed batch serialises");
        let reread: Vec<Change> = serde_json::from_slice(&again).expect("and parses again");
        assert_eq!(reread, batch);
        let _ = Snapshot::empty().apply_all(&batch);
    }
    if let Ok(batch) = serde_json::from_slice::<Vec<UserChange>>(data) {
        let again = serde_json::to_vec(&batch).expect("a parsed batch serialises");
        let reread: Vec<UserChange> = serde_json::from_slice(&again).expect("and parses again");
        assert_eq!(reread, batch);
        let _ = apply_user_changes(&PartyRegister::default(), &CertStore::default(), &batch);
    }
});
