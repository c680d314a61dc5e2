//! Okta's import: every user, page after page with `count=100`, through the gateway, and the
//! same entries read raw with one paged ldap3 search (what `ldapsearch -E pr=500` does), on the
//! same slapd in the same run. Reports:
//! - the last page's latency over the first's (target <= 1.5): page k must not cost more as k
//!   grows, which is what the snapshot of ids buys (see docs/query.md);
//! - the whole import's time over the raw read's (target <= 3).
//!
//! `cargo bench --bench import` imports 50,000 users; `cargo test` runs a smoke version with 1,000.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::gateway::{config_text, TestGateway};
use common::{users_ldif, Slapd};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use scim_gateway::config::Loaded;
use scim_gateway::mapping::UserMapping;
use support::{median, ms};

const COUNT: usize = 100;
/// The raw read's page size: the gateway's own `[directory] page_size`. The target is
/// against this one; a raw read paged like the import (by 100) is printed too.
const RAW_PAGE: i32 = 500;

fn main() {
    let (users, rounds) = if support::full() { (50_000, 5) } else { (1_000, 2) };
    support::run(bench(users, rounds));
}

struct Import {
    first: Duration,
    last: Duration,
    pages: Vec<Duration>,
    total: Duration,
}

async fn import(gw: &TestGateway, users: usize) -> Import {
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut seen = 0;
    let mut start = 1;
    loop {
        let t = Instant::now();
        let a = gw.get(&format!("/Users?startIndex={start}&count={COUNT}")).await;
        pages.push(t.elapsed());
        assert_eq!(a.status, 200, "{:#}", a.body);
        assert_eq!(a.body["totalResults"], users);
        let n = a.body["Resources"].as_array().expect("Resources").len();
        seen += n;
        start += n;
        if start > users {
            break;
        }
    }
    assert_eq!(seen, users);
    Import { first: pages[0], last: *pages.last().unwrap(), total: started.elapsed(), pages }
}

/// The same entries and attributes, read raw: one paged search over one bound connection.
async fn raw(slapd: &Slapd, attrs: &[String], users: usize, page: i32) -> Duration {
    let mut ldap = slapd.bind(&slapd.service_dn, &slapd.service_password).await;
    let started = Instant::now();
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page))];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            "ou=people,dc=example,dc=test",
            ldap3::Scope::Subtree,
            "(objectClass=inetOrgPerson)",
            attrs.to_vec(),
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(e) = stream.next().await.unwrap() {
        std::hint::black_box(ldap3::SearchEntry::construct(e));
        n += 1;
    }
    assert_eq!(stream.finish().await.rc, 0);
    assert_eq!(n, users);
    started.elapsed()
}

async fn bench(users: usize, rounds: usize) {
    let t = Instant::now();
    let slapd = Slapd::start_seeded(&users_ldif(0..users));
    println!("seeded {users} users in {:.1} s", t.elapsed().as_secs_f64());
    let text = config_text(&slapd, |t| t);
    let gw = TestGateway::from_text(text.clone()).await;
    // What the gateway reads for each user of a page: the raw read asks for the same.
    let mapping = UserMapping::compile(&Loaded::parse("gateway.toml", text).unwrap().config.users).unwrap();
    let attrs: Vec<String> = mapping.read_attrs.iter().cloned().chain(["memberOf".to_string()]).collect();

    // One of each first, so both start with slapd's caches warm.
    import(&gw, users).await;
    raw(&slapd, &attrs, users, RAW_PAGE).await;
    let (mut imports, mut raws, mut raws_by_count) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        imports.push(import(&gw, users).await);
        raws.push(raw(&slapd, &attrs, users, RAW_PAGE).await);
        raws_by_count.push(raw(&slapd, &attrs, users, COUNT as i32).await);
    }
    let first = median(imports.iter().map(|i| i.first).collect());
    let last = median(imports.iter().map(|i| i.last).collect());
    let page = median(imports.iter().flat_map(|i| i.pages.iter().skip(1).copied()).collect());
    let later: Vec<Duration> = imports.iter().flat_map(|i| i.pages.iter().skip(1).copied()).collect();
    let mean = later.iter().sum::<Duration>() / later.len().max(1) as u32;
    let mut sorted = later.clone();
    sorted.sort();
    let p95 = sorted.get(sorted.len() * 95 / 100).copied().unwrap_or_default();
    let total = median(imports.iter().map(|i| i.total).collect());
    let raw_total = median(raws);
    let raw_by_count = median(raws_by_count);
    let pages = users.div_ceil(COUNT);
    println!("\n{users} users, {pages} pages of {COUNT}, median of {rounds} imports (ms):");
    println!("  first page {:>9.2}   (searches the ids of the whole result and keeps them)", ms(first));
    println!(
        "  later page {:>9.2}   (median of pages 2..{pages}; mean {:.2}, 95th percentile {:.2})",
        ms(page),
        ms(mean),
        ms(p95)
    );
    println!("  last page  {:>9.2}", ms(last));
    println!("  import     {:>9.2}", ms(total));
    println!("  raw read   {:>9.2}   (one ldap3 search, paged by {RAW_PAGE}, same attributes)", ms(raw_total));
    println!("  raw read   {:>9.2}   (the same, paged by {COUNT})", ms(raw_by_count));
    println!("last page / first page: {:.2} (target <= 1.5)", ms(last) / ms(first));
    println!("import / raw paged read: {:.2}x (target <= 3)", ms(total) / ms(raw_total));
    println!("import / raw read paged by {COUNT}: {:.2}x", ms(total) / ms(raw_by_count));
    gw.stop().await;
}
