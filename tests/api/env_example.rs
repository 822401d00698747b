//! `.env.example` lists exactly the variables the configuration reads.

use std::{collections::BTreeSet, sync::Mutex};

use tenantry::config::Config;

/// Listed for the AWS SDK's credential chain, which reads them itself.
const READ_BY_THE_AWS_SDK: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// Every `NAME=` line, commented out or not.
fn listed() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('#').trim();
            let (name, _) = line.split_once('=')?;
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn env_example_lists_exactly_the_variables_read() {
    let read = Mutex::new(BTreeSet::new());
    Config::from_lookup(|name| {
        read.lock().expect("not poisoned").insert(name.to_owned());
        None
    })
    .expect("the defaults are valid");
    let mut read = read.into_inner().expect("not poisoned");
    read.extend(READ_BY_THE_AWS_SDK.map(String::from));
    let listed = listed();
    let unlisted: Vec<_> = read.difference(&listed).collect();
    let unread: Vec<_> = listed.difference(&read).collect();
    assert!(
        unlisted.is_empty() && unread.is_empty(),
        "read but not in .env.example: {unlisted:?}; in .env.example but never read: {unread:?}"
    );
}
