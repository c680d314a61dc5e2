//! No SQL injection, and filters answered right. Pure first: every SQL condition the gateway
//! builds from a generated SCIM filter has the same text whatever the values (hostile or
//! placeholders), and each value is a parameter, never text. Then end to end: generated filters with hostile values (quotes,
//! `'; DROP TABLE`, backslashes, `%` and `_` in sw/co/ew, NUL, long unicode) go through a
//! running gateway to PostgreSQL; each answer must be exactly the users the gateway's own
//! SCIM evaluation (`scim::eval`, no SQL) selects from the full list, and the tables must be
//! intact afterwards. Paging: keyset pages over thousands of rows, none twice, `totalResults`
//! right with and without a filter.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use scim_gateway::scim::eval;
use scim_gateway::scim::filter::parse_filter;
use scim_gateway::scim::USER_SCHEMA;
use serde_json::{json, Map, Value};

use crate::common::filter_gen;
use crate::common::gateway::{okta_user, q, TestGateway};
use crate::common::postgres::Postgres;
use crate::common::postgres_store::{config, config_for};
use scim_gateway::config::Loaded;
use scim_gateway::directory::postgres::sql::{Columns, Sql};
use scim_gateway::mapping::UserMapping;

/// Values an attacker would try against SQL, and what LIKE and string literals treat specially.
const HOSTILE: &[&str] = &[
    "'",
    "''",
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "\\",
    "\\'",
    "%",
    "_",
    "a%b",
    "a_b",
    "100%",
    "%'--",
    "$1",
    "\0",
    "a\u{0}b",
    "é\u{202e}ü",
    "\u{fffd}\u{7f}\u{1}",
    "o'brien",
    "*)(uid=*",
];

/// The preset's mapped user paths.
const PATHS: &[&str] = &[
    "userName",
    "externalId",
    "name.givenName",
    "name.familyName",
    "displayName",
    "emails.value",
    "title",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

/// Users whose stored values hold the characters SQL and LIKE treat specially, so that a
/// pattern that forgot to escape `%` or `_` matches too much and is caught.
fn trap_users() -> Vec<Value> {
    let long = "ü".repeat(300);
    let specs: [(&str, &str, &str); 12] = [
        ("plain@example.com", "Engineer", "Plain"),
        ("a%b@example.com", "100% sure", "Per%cent"),
        ("axb@example.com", "100x sure", "Perxcent"),
        ("a_b@example.com", "under_score", "Under_score"),
        ("o'brien@example.com", "it's", "O'Brien"),
        ("back\\slash@example.com", "C:\\path", "Back\\slash"),
        ("drop@example.com", "'; DROP TABLE users; --", "Robert'); DROP TABLE"),
        ("quote\"d@example.com", "say \"hi\"", "Quo\"te"),
        ("dollar$1@example.com", "$1", "$$"),
        ("Ünïcødé@example.com", &long, "Ünïcødé"),
        ("UPPER@example.com", "ENGINEER", "UPPER"),
        ("star*)(uid=*@example.com", "*)(uid=*", "Star"),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (name, title, family))| {
            let mut u = okta_user(name, None);
            u["title"] = (*title).into();
            u["name"]["familyName"] = (*family).into();
            u["externalId"] = format!("ext-{i}%_'").into();
            u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
                json!({"department": format!("D{}", i % 3)});
            u["schemas"] = json!([
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ]);
            u
        })
        .collect()
}

/// The preset's user mapping, compiled as the gateway compiles it.
fn users() -> UserMapping {
    let loaded = Loaded::parse("postgres.toml", config_for(5432, None, |t| t)).expect("the preset loads");
    UserMapping::compile(&loaded.config.users).expect("the preset's user mapping compiles")
}

/// The SQL condition (text and parameters) the gateway runs for the SCIM filter `filter`.
fn condition(mapping: &UserMapping, filter: &str) -> Sql {
    let neutral = mapping.ldap_filter(&parse_filter(filter).unwrap()).unwrap().filter;
    let columns = Columns { times: vec!["created_at".into(), "updated_at".into()], members: None };
    let mut sql = Sql::default();
    sql.text = columns.condition("u", &neutral, &mut sql);
    sql
}

/// `value` as the LIKE pattern that matches it literally.
fn like_literal(value: &str) -> String {
    value.chars().flat_map(|c| if matches!(c, '\\' | '%' | '_') { vec!['\\', c] } else { vec![c] }).collect()
}

/// The benign LIKE pattern `slot` (placeholders `v0`…`v3` between `%`s) with each placeholder
/// replaced, in one pass, by its value as a literal: a value that reads like a placeholder is
/// not replaced again.
fn fill_pattern(slot: &str, values: &[String]) -> String {
    let mut out = String::new();
    let mut chars = slot.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('v', Some(k)) => {
                chars.next();
                out.push_str(&like_literal(&values[k as usize]));
            }
            _ => out.push(c),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn values_never_change_the_sql(t in filter_gen::template(PATHS.len(), OPS.len()), values in vec(filter_gen::hostile_value(HOSTILE), 4)) {
        let mapping = users();
        let hostile = condition(&mapping, &t.render(PATHS, OPS, &|k| values[k].clone()));
        let benign = condition(&mapping, &t.render(PATHS, OPS, &|k| format!("v{k}")));
        prop_assert_eq!(&hostile.text, &benign.text, "the statement's text depends on a value");
        prop_assert_eq!(hostile.params.len(), benign.params.len());
        // Where placeholder `vK` went, value K went: whole, or LIKE-escaped inside a pattern.
        for (got, slot) in hostile.params.iter().zip(&benign.params) {
            let want = match slot.strip_prefix('v').and_then(|k| k.parse::<usize>().ok()) {
                Some(k) => values[k].clone(),
                None => fill_pattern(slot, &values),
            };
            prop_assert_eq!(got, &want, "{}", hostile.text);
        }
    }
}

/// One PostgreSQL, one gateway and the seeded users for every case (they only read), on a
/// runtime of the test's own.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    pg: Postgres,
    gw: TestGateway,
    /// Every user as the gateway lists it.
    all: Vec<Map<String, Value>>,
}

impl Fixture {
    fn new() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let pg = Postgres::start();
        let (gw, all) = runtime.block_on(async {
            let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
            for u in trap_users() {
                let a = gw.post("/Users", &u).await;
                assert_eq!(a.status, 201, "{:#}", a.body);
            }
            let listed = gw.get("/Users?count=1000").await;
            let all: Vec<Map<String, Value>> =
                listed.body["Resources"].as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect();
            (gw, all)
        });
        assert_eq!(all.len(), trap_users().len());
        Fixture { runtime, pg, gw, all }
    }

    /// Asserts the gateway answers `filter` with exactly the users SCIM's semantics select; a
    /// filter it cannot evaluate exactly may be refused as too broad, never answered wrong.
    fn check(&self, filter: &str) -> Result<(), TestCaseError> {
        match self.runtime.block_on(answer(&self.gw, filter)) {
            Ok(ids) => prop_assert_eq!(ids, expected(&self.all, filter), "{}", filter),
            Err(e) => prop_assert!(e["status"] == 400 && e["body"]["scimType"] == "tooMany", "{}: {}", filter, e),
        }
        Ok(())
    }
}

/// The ids the gateway answers `filter` with (all of them: one page), or its error.
async fn answer(gw: &TestGateway, filter: &str) -> Result<BTreeSet<String>, Value> {
    let a = gw.get(&format!("/Users?count=1000&filter={}", q(filter))).await;
    if a.status != 200 {
        return Err(json!({"status": a.status.as_u16(), "body": a.body}));
    }
    let ids: BTreeSet<String> =
        a.body["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(a.body["totalResults"].as_u64(), Some(ids.len() as u64), "{filter}: totalResults");
    Ok(ids)
}

/// The ids SCIM's semantics select, evaluated by the gateway's pure evaluator on the listing.
fn expected(all: &[Map<String, Value>], filter: &str) -> BTreeSet<String> {
    let parsed = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    all.iter()
        .filter(|r| eval::matches(r, &parsed, USER_SCHEMA))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Generated filters (300 cases) and written-out ones with every hostile value: each answer is
/// SCIM's; afterwards every table holds what it held before.
#[test]
fn hostile_filters_answer_what_scim_says_and_change_nothing() {
    let f = Fixture::new();
    let tables = f.runtime.block_on(f.pg.snapshot());
    // No regression file: the cases replayed are the fixture's, not a source file's.
    let mut runner =
        TestRunner::new(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() });
    let cases = (filter_gen::template(PATHS.len(), OPS.len()), vec(filter_gen::hostile_value(HOSTILE), 4));
    runner
        .run(&cases, |(t, values)| f.check(&t.render(PATHS, OPS, &|k| values[k].clone())))
        .unwrap_or_else(|e| panic!("{e}"));
    for value in HOSTILE {
        let json = serde_json::to_string(value).unwrap();
        for filter in [
            format!("userName eq {json}"),
            format!("title co {json}"),
            format!("title sw {json}"),
            format!("name.familyName ew {json}"),
            format!("userName gt {json} and title pr"),
            format!("not (externalId eq {json})"),
        ] {
            f.check(&filter).unwrap();
        }
    }
    // `%` and `_` are literal: `title co "%"` finds the one title with a percent sign.
    let total = |filter: &str| f.runtime.block_on(f.gw.total(filter));
    assert_eq!(total(r#"title co "%""#), 1);
    assert_eq!(total(r#"title co "_""#), 1);
    assert_eq!(total(r#"userName sw "a_""#), 1);
    assert_eq!(total(r#"title ew "\\path""#), 1);
    assert_eq!(f.runtime.block_on(f.pg.snapshot()), tables, "a filter changed a table");
}

/// Keyset paging: 2,345 users read 100 at a time, every one once, in a stable order, with
/// `totalResults` right, also under a filter; a late page as well as the first.
#[tokio::test]
async fn paging_through_thousands() {
    let pg = Postgres::start();
    pg.execute(
        "INSERT INTO users (user_name, display_name, title) \
         SELECT 'user' || lpad(i::text, 5, '0'), 'User ' || i, CASE WHEN i % 3 = 0 THEN 'Fizz' ELSE 'Buzz' END \
         FROM generate_series(0, 2344) i",
    )
    .await;
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    for (filter, total) in [(None, 2345), (Some(r#"title eq "Fizz""#), 782)] {
        let query = filter.map(|f| format!("&filter={}", q(f))).unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut start = 1;
        while start <= total {
            let page = gw.get(&format!("/Users?startIndex={start}&count=100{query}")).await;
            assert_eq!(page.status, 200, "{:#}", page.body);
            assert_eq!(page.body["totalResults"], total, "{filter:?} at {start}");
            assert_eq!(page.body["startIndex"], start);
            let items = page.body["Resources"].as_array().unwrap();
            assert_eq!(items.len(), 100.min(total - (start - 1)), "{filter:?} at {start}");
            assert_eq!(page.body["itemsPerPage"], items.len());
            for u in items {
                assert!(seen.insert(u["id"].as_str().unwrap().to_owned()), "a user appeared on two pages");
                if filter.is_some() {
                    assert_eq!(u["title"], "Fizz");
                }
            }
            start += 100;
        }
        assert_eq!(seen.len(), total);
        let past = gw.get(&format!("/Users?startIndex={}&count=100{query}", total + 1)).await;
        assert_eq!(past.body["totalResults"], total);
        assert_eq!(past.body["Resources"], json!([]));
    }
    // Sorted pages: the database orders, the pages follow each other.
    let first = gw.get("/Users?sortBy=userName&sortOrder=descending&startIndex=1&count=3").await;
    let names: Vec<&str> =
        first.body["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["user02344", "user02343", "user02342"], "{:#}", first.body);
    let late = gw.get("/Users?sortBy=userName&startIndex=2301&count=3").await;
    let names: Vec<&str> =
        late.body["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["user02300", "user02301", "user02302"], "{:#}", late.body);
    gw.stop().await;
}

/// A private PostgreSQL that logs every statement, and a gateway in front of it.
async fn logging_every_statement() -> (Postgres, TestGateway) {
    let pg = Postgres::start();
    pg.execute("ALTER SYSTEM SET log_statement = 'all'").await;
    pg.execute("SELECT pg_reload_conf()").await;
    let gw = TestGateway::from_text(config(&pg, None, |t| t)).await;
    (pg, gw)
}

/// The statements PostgreSQL logged from byte `from` of its log on.
fn ran_since(pg: &Postgres, from: usize) -> Vec<String> {
    let log = pg.log();
    let lines = log.get(from..).unwrap_or_default().lines();
    lines.filter(|l| l.contains("LOG:  statement:") || l.contains("LOG:  execute")).map(str::to_owned).collect()
}

/// The prepared statement's name in an `execute sN: …` line (tokio-postgres names each
/// preparation anew).
fn statement_name(line: &str) -> Option<String> {
    Some(line.split("execute ").nth(1)?.split(':').next()?.to_owned())
}

/// Okta's lookup by userName reads the row without a transaction or a count: a first page
/// with fewer rows than asked for holds them all. A full first page still counts, in one
/// snapshot with its rows. Statements are prepared once per connection. (PostgreSQL's own
/// statement log says what ran.)
#[tokio::test]
async fn a_short_first_page_is_one_statement() {
    let (pg, gw) = logging_every_statement().await;
    for name in ["amy", "ben"] {
        assert_eq!(gw.post("/Users", &okta_user(&format!("{name}@example.com"), None)).await.status, 201);
    }

    let from = pg.log().len();
    for (name, total) in [("amy@example.com", 1), ("nobody@example.com", 0)] {
        let found = gw.get(&format!("/Users?filter={}", q(&format!("userName eq \"{name}\"")))).await;
        assert_eq!(found.body["totalResults"], total, "{:#}", found.body);
    }
    let lookups = ran_since(&pg, from);
    assert!(lookups.iter().any(|l| l.contains("LIMIT")), "the rows were read: {lookups:#?}");
    assert!(!lookups.iter().any(|l| l.contains("count(") || l.contains("START TRANSACTION")), "{lookups:#?}");

    let from = pg.log().len();
    let page = gw.get("/Users?count=1").await;
    assert_eq!(
        (page.body["totalResults"].as_u64(), page.body["Resources"].as_array().map(Vec::len)),
        (Some(2), Some(1))
    );
    let full = ran_since(&pg, from);
    assert!(
        full.iter().any(|l| l.contains("count(")) && full.iter().any(|l| l.contains("START TRANSACTION")),
        "{full:#?}"
    );
    println!("statements per lookup: {} for two lookups", lookups.len());

    // Each connection prepares a statement once: twenty lookups by twenty names run one
    // statement per connection used, not twenty.
    let from = pg.log().len();
    for i in 0..20 {
        let found = gw.get(&format!("/Users?filter={}", q(&format!("userName eq \"nobody{i}@example.com\"")))).await;
        assert_eq!(found.body["totalResults"], 0, "{:#}", found.body);
    }
    let names: BTreeSet<String> =
        ran_since(&pg, from).iter().filter(|l| l.contains("LIMIT")).filter_map(|l| statement_name(l)).collect();
    assert!((1..=8).contains(&names.len()), "at most one per connection of the pool of 8: {names:?}");
    gw.stop().await;
}

/// A connection keeps a bounded number of prepared statements: statement texts follow what
/// clients ask (here 300 page sizes), and past 256 the connection starts afresh, so a lookup
/// prepared before is prepared again (under a new name in PostgreSQL's statement log).
#[tokio::test]
async fn prepared_statements_are_bounded_per_connection() {
    let (pg, gw) = logging_every_statement().await;
    let lookup = format!("/Users?filter={}", q("userName eq \"amy@example.com\""));
    let name_of_lookup = async || {
        let from = pg.log().len();
        assert_eq!(gw.get(&lookup).await.status, 200);
        let ran = ran_since(&pg, from);
        ran.iter().find(|l| l.contains("LIMIT")).and_then(|l| statement_name(l)).expect("the lookup ran")
    };
    let first = name_of_lookup().await;
    assert_eq!(name_of_lookup().await, first, "one connection, one preparation: the control");
    for n in 1..=300 {
        assert_eq!(gw.get(&format!("/Users?count={n}")).await.status, 200);
    }
    assert_ne!(name_of_lookup().await, first, "the 300 page sizes emptied the connection's statements");
    gw.stop().await;
}
