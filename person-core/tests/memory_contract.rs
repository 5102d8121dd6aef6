//! The store contract suite (`person_core::testkit`) run against [`InMemoryStore`], the reference store.

use person_core::InMemoryStore;

async fn fresh() -> Option<InMemoryStore> {
    Some(InMemoryStore::new())
}

person_core::store_contract_tests!(fresh);
