//! The relay lease beyond the contract suite: concurrent take-overs of an expired lease, across separate
//! connection pools (as separate API processes would hold them), let exactly one instance win.

use futures::future::join_all;
use person_core::ports::RelayRepository;
use person_core::testkit::fixtures::instant;
use person_postgres::testing::fresh_test_url;
use person_postgres::{PostgresOptions, PostgresStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_take_overs_of_an_expired_lease_from_separate_processes_let_exactly_one_win() {
    let Some(url) = fresh_test_url() else { return };
    let options = PostgresOptions { max_connections: 2, ..PostgresOptions::default() };
    let first = PostgresStore::connect(&url, options.clone()).await.expect("store connects");
    let ttl = chrono::TimeDelta::seconds(30);
    first.acquire_relay_lease("sns", "old", instant(), ttl).await.expect("acquire succeeds").expect("free lease");
    first.advance_relay("sns", "old", 42, instant(), ttl).await.expect("holder advances");

    let mut processes = Vec::new();
    for _ in 0..5 {
        processes.push(PostgresStore::connect(&url, options.clone()).await.expect("store connects"));
    }
    let later = instant() + ttl;
    let attempts = processes.iter().enumerate().flat_map(|(process, store)| {
        (0..2).map(move |task| {
            let holder = format!("process-{process}-{task}");
            async move { store.acquire_relay_lease("sns", &holder, later, ttl).await.expect("acquire succeeds") }
        })
    });
    let winners: Vec<_> = join_all(attempts).await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one take-over: {winners:?}");
    assert_eq!(winners[0].position, 42, "the new holder resumes at the stored position");
    let state = first.relay_state("sns").await.expect("relay_state succeeds").expect("relay ran");
    assert_eq!(state.holder, winners[0].holder);
    assert_eq!(state.expires_at, later + ttl);
}
