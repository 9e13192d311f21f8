//! The requests themselves: DUIS 5.4 XML for each planned request, signed before the run with
//! its User's XML-signing key (`dccgw::xmldsig::sign_document`, the gateway's own signer), on
//! every core, so that the run itself only sends bytes.

use bytes::Bytes;

use dccgw::domain::RequestId;
use dccgw::signer::Signer;
use dccgw::xmldsig::{self, c14n::C14nLimits, SignError};

use crate::plan::Plan;
use crate::population::Population;
use crate::scenario::MixEntry;

/// The unsigned request for `entry` with RequestID `id`.
pub fn request_xml(entry: &MixEntry, id: &RequestId) -> String {
    let element = entry.body_element();
    let body = if entry.body.trim().is_empty() {
        format!("<sr:{element}/>")
    } else {
        format!("<sr:{element}>{}</sr:{element}>", entry.body.trim())
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <sr:Request xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\">\
         <sr:Header><sr:RequestID>{id}</sr:RequestID><sr:CommandVariant>{cv}</sr:CommandVariant>\
         <sr:ServiceReference>{sr}</sr:ServiceReference><sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>\
         </sr:Header><sr:Body>{body}</sr:Body></sr:Request>\n",
        cv = entry.cv,
        sr = entry.srv.service_reference(),
        srv = entry.srv,
    )
}

/// The RequestID of plan item `i`.
pub fn request_id(plan: &Plan, pop: &Population, i: usize) -> RequestId {
    let item = &plan.items[i];
    RequestId {
        originator: pop.users[item.user as usize].id,
        target: item.target,
        counter: plan.counter_base + i as u64,
    }
}

/// Every request of `plan`, signed by its User's key (`signers[user]`), in plan order.
pub fn presign(
    plan: &Plan,
    mix: &[MixEntry],
    pop: &Population,
    signers: &[Signer],
    threads: usize,
) -> Result<Vec<Bytes>, SignError> {
    let n = plan.items.len();
    let threads = threads.clamp(1, 64);
    let chunk = n.div_ceil(threads).max(1);
    let limits = C14nLimits::default();
    let parts: Vec<Result<Vec<Bytes>, SignError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let limits = &limits;
                scope.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|i| {
                            let item = &plan.items[i];
                            let entry = &mix[item.class as usize];
                            let xml = request_xml(entry, &request_id(plan, pop, i));
                            let signer = signers.get(item.user as usize).ok_or(SignError::Key)?;
                            xmldsig::sign_document(&xml, signer, limits)
                                .map(|s| Bytes::from(s.into_bytes()))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            // A signing thread that panicked is a bug here, not peer input: report it as a
            // key failure rather than unwinding through the scope.
            .map(|h| h.join().unwrap_or(Err(SignError::Key)))
            .collect()
    });
    let mut out = Vec::with_capacity(n);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
