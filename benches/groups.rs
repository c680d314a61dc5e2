//! Large groups: adding or removing one member of a 50,000-member group should cost about
//! what it costs on a one-member group, and reading a group without its members should not
//! depend on its size. Prints medians and ratios, measured in one run, with raw LDAP modifies
//! on the same slapd as the floor.
//!
//! `cargo bench --bench groups` runs it with 50,000 members; plain `cargo test` runs a smoke
//! version with 500.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::gateway::{q, TestGateway};
use common::{group_ldif, users_ldif, Slapd};
use serde_json::json;
use support::{median, ms};

fn main() {
    let (size, rounds) = if support::full() { (50_000, 200) } else { (500, 10) };
    support::run(bench(size, rounds));
}

async fn bench(size: usize, rounds: usize) {
    // Users 0..size are in "big"; user size is alone in "small"; the next `rounds` users join and leave.
    let seed =
        [users_ldif(0..size + 1 + rounds), group_ldif("big", 0..size), group_ldif("small", size..size + 1)].concat();
    let started = Instant::now();
    let slapd = Slapd::start_seeded(&seed);
    println!(
        "seeded {} users and a {size}-member group in {:.1} s",
        size + 1 + rounds,
        started.elapsed().as_secs_f64()
    );
    let gw = TestGateway::start(&slapd).await;

    let group_id = async |name: &str| {
        let a = gw
            .get(&format!("/Groups?excludedAttributes=members&filter={}", q(&format!(r#"displayName eq "{name}""#))))
            .await;
        a.body["Resources"][0]["id"].as_str().expect("group id").to_owned()
    };
    let (big, small) = (group_id("big").await, group_id("small").await);
    let mut joiners = Vec::new();
    for i in size + 1..size + 1 + rounds {
        let a = gw.get(&format!("/Users?filter={}", q(&format!(r#"userName eq "user{i}""#)))).await;
        joiners.push(a.body["Resources"][0]["id"].as_str().expect("user id").to_owned());
    }

    let mut rows = Vec::new();
    for (name, id) in [("small", &small), ("big", &big)] {
        let (mut add, mut remove, mut read) = (Vec::new(), Vec::new(), Vec::new());
        for user in &joiners {
            let t = Instant::now();
            let a = gw
                .patch(&format!("/Groups/{id}"), json!([{"op": "add", "path": "members", "value": [{"value": user}]}]))
                .await;
            add.push(t.elapsed());
            assert_eq!(a.status, 204, "{:#}", a.body);
            let t = Instant::now();
            let path = format!("members[value eq \"{user}\"]");
            let a = gw.patch(&format!("/Groups/{id}"), json!([{"op": "remove", "path": path}])).await;
            remove.push(t.elapsed());
            assert_eq!(a.status, 204, "{:#}", a.body);
            let t = Instant::now();
            let a = gw.get(&format!("/Groups/{id}?excludedAttributes=members")).await;
            read.push(t.elapsed());
            assert!(a.body.get("members").is_none());
        }
        rows.push((name, median(add), median(remove), median(read)));
    }

    // The floor: the same member add and delete straight to slapd over one bound connection,
    // on each group, so slapd's own growth with the group's size shows apart from ours.
    let mut ldap = slapd.bind(&slapd.service_dn, &slapd.service_password).await;
    let mut raw = Vec::new();
    for name in ["small", "big"] {
        let group = format!("cn={name},ou=groups,dc=example,dc=test");
        let (mut add, mut delete, mut read) = (Vec::new(), Vec::new(), Vec::new());
        for i in size + 1..size + 1 + rounds {
            let member = format!("uid=user{i},ou=people,dc=example,dc=test");
            let t = Instant::now();
            ldap.modify(&group, vec![ldap3::Mod::Add("member", [member.as_str()].into())])
                .await
                .unwrap()
                .success()
                .unwrap();
            add.push(t.elapsed());
            let t = Instant::now();
            ldap.modify(&group, vec![ldap3::Mod::Delete("member", [member.as_str()].into())])
                .await
                .unwrap()
                .success()
                .unwrap();
            delete.push(t.elapsed());
            let t = Instant::now();
            let attrs = vec!["cn", "entryUUID", "createTimestamp", "modifyTimestamp", "entryCSN", "description"];
            ldap.search(&group, ldap3::Scope::Base, "(objectClass=*)", attrs).await.unwrap().success().unwrap();
            read.push(t.elapsed());
        }
        raw.push((name, median(add), median(delete), median(read)));
    }

    println!("\nmedian of {rounds} rounds, {size}-member group vs 1-member group, over loopback (ms):");
    println!("{:<18} {:>10} {:>10} {:>22}", "", "add", "remove", "GET without members");
    for ((name, add, remove, read), (_, raw_add, raw_delete, raw_read)) in rows.iter().zip(&raw) {
        println!("{:<18} {:>10.2} {:>10.2} {:>22.2}", format!("gateway, {name}"), ms(*add), ms(*remove), ms(*read));
        println!(
            "{:<18} {:>10.2} {:>10.2} {:>22.2}",
            format!("raw LDAP, {name}"),
            ms(*raw_add),
            ms(*raw_delete),
            ms(*raw_read)
        );
    }
    let ratio = |i: usize, f: fn(&(&str, Duration, Duration, Duration)) -> Duration| ms(f(&rows[i])) / ms(f(&raw[i]));
    let growth = |v: &[(&str, Duration, Duration, Duration)],
                  f: fn(&(&str, Duration, Duration, Duration)) -> Duration| {
        ms(f(&v[1])) / ms(f(&v[0]))
    };
    println!(
        "big / small, gateway: add {:.2}x, remove {:.2}x, read {:.2}x (target <= 2)",
        growth(&rows, |r| r.1),
        growth(&rows, |r| r.2),
        growth(&rows, |r| r.3)
    );
    println!(
        "big / small, raw LDAP: add {:.2}x, delete {:.2}x, read {:.2}x (slapd's own growth)",
        growth(&raw, |r| r.1),
        growth(&raw, |r| r.2),
        growth(&raw, |r| r.3)
    );
    println!(
        "gateway / raw: small add {:.2}x, big add {:.2}x, big remove {:.2}x, big read {:.2}x",
        ratio(0, |r| r.1),
        ratio(1, |r| r.1),
        ratio(1, |r| r.2),
        ratio(1, |r| r.3)
    );
    gw.stop().await;
}
