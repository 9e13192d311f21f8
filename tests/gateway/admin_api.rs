//! `openapi/admin.yaml` against the admin listener: it describes every route the listener serves
//! (read from `src/admin/mod.rs`'s router) and nothing else, and the running listener answers
//! each documented operation with a status the description lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (method, path) → the documented statuses.
fn documented() -> BTreeMap<(String, String), BTreeSet<u16>> {
    let text = std::fs::read_to_string(root().join("openapi/admin.yaml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["openapi"].as_str(), Some("3.0.3"));
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            let statuses = op["responses"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().parse::<u16>().unwrap())
                .collect();
            out.insert(
                (
                    method.as_str().unwrap().to_uppercase(),
                    path.as_str().unwrap().to_owned(),
                ),
                statuses,
            );
        }
    }
    out
}

/// The routes the router matches: `(&Method::GET, "/livez")` or `(&Method::POST, SOME_PATH)`
/// arms, constants resolved from the same file.
fn served() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(root().join("src/admin/mod.rs")).unwrap();
    let consts: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("const "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(": &str = \"")?;
            Some((name, rest.strip_suffix("\";")?))
        })
        .collect();
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("(&Method::") {
        let rest = &text[at + "(&Method::".len()..];
        let (method, rest) = rest.split_once(',').unwrap();
        let target = rest.split(')').next().unwrap().trim();
        let path = match target.strip_prefix('"') {
            Some(p) => p.trim_end_matches('"'),
            None => consts
                .get(target)
                .copied()
                .unwrap_or_else(|| panic!("{target}")),
        };
        out.insert((method.to_owned(), path.to_owned()));
    }
    out
}

#[test]
fn the_description_covers_every_served_route_and_no_other() {
    let documented: BTreeSet<_> = documented().into_keys().collect();
    let served = served();
    assert!(served.len() >= 8, "{served:?}");
    assert_eq!(documented, served);
}

#[tokio::test]
async fn the_listener_answers_each_operation_with_a_documented_status() {
    let gw = support::start("").await;
    let client = reqwest::Client::new();
    for ((method, path), statuses) in documented() {
        let url = format!("{}{path}", gw.admin());
        let request = match method.as_str() {
            "GET" => client.get(&url),
            "POST" => client.post(&url).body("[]"),
            other => panic!("{other}"),
        };
        let status = request.send().await.unwrap().status().as_u16();
        assert!(
            statuses.contains(&status),
            "{method} {path} answered {status}, not among {statuses:?}"
        );
    }
    let status = client
        .get(format!("{}/admin/v1/undocumented", gw.admin()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    gw.running.shutdown().await;
}
