//! [`CatalogData`] on Postgres.

use super::audit::insert_audit;
use super::outbox::insert_events;
use super::{PostgresStore, bind, conflict_or, pg, pool_error};
use crate::query::Dialect;
use crate::rows::{self, ms};
use crate::sql;
use crate::{
    AuditRecord, Blueprint, CatalogData, Entity, EntityRef, Query, Relation, Result, Write, db,
};
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio_postgres::types::Json;

/// Entity writes on this replica between two looks at how much of the catalog changed since
/// its statistics were taken.
const LOOK_EVERY: u64 = 1_000;
/// The catalog is analysed again once this many rows changed since its last analysis...
const STALE_ROWS: f64 = 1_000.0;
/// ...plus this fraction of the rows it had then.
const STALE_FRACTION: f64 = 0.5;

/// Takes the catalog's planner statistics again after bulk writes. Autovacuum would, but it looks
/// once a minute: meanwhile a catalog just imported has no statistics (or those of a tenth of
/// it), and Postgres plans every property filter as a scan and sort of all entities (100 ms and
/// more at 100,000) instead of a walk of the order's index that stops at the page's end.
#[derive(Default)]
pub(super) struct Statistics {
    writes: AtomicU64,
    running: Arc<AtomicBool>,
}

impl Statistics {
    /// Counts one entity write; every [`LOOK_EVERY`] writes, analyses the catalog's tables in
    /// the background if they changed enough (counted by Postgres, across replicas).
    fn wrote(&self, pool: &Pool) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % LOOK_EVERY != LOOK_EVERY - 1
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (pool, running) = (pool.clone(), self.running.clone());
        tokio::spawn(async move {
            if let Err(e) = analyse_if_stale(&pool).await {
                tracing::warn!("analysing the catalog after bulk writes: {e}");
            }
            running.store(false, Ordering::Release);
        });
    }
}

async fn analyse_if_stale(pool: &Pool) -> Result<()> {
    let c = pool.get().await.map_err(pool_error)?;
    let row = c
        .query_one(
            "SELECT coalesce(s.n_mod_since_analyze, 0)::float8, greatest(c.reltuples, 0)::float8 \
             FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE c.oid = 'entities'::regclass",
            &[],
        )
        .await
        .map_err(pg)?;
    let (changed, rows): (f64, f64) = (row.try_get(0).map_err(pg)?, row.try_get(1).map_err(pg)?);
    if changed >= STALE_ROWS + STALE_FRACTION * rows {
        c.batch_execute("ANALYZE entities, entity_relations")
            .await
            .map_err(pg)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl CatalogData for PostgresStore {
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(sql::LIST_BLUEPRINTS.postgres())
            .await
            .map_err(pg)?;
        c.query(&stmt, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .collect()
    }

    async fn get_blueprint(&self, identifier: &str) -> Result<Option<Blueprint>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(sql::GET_BLUEPRINT.postgres())
            .await
            .map_err(pg)?;
        c.query_opt(&stmt, &[&identifier])
            .await
            .map_err(pg)?
            .map(|r| serde_json::from_value(r.try_get(0).map_err(pg)?).map_err(db))
            .transpose()
    }

    async fn put_blueprint(&self, bp: Blueprint, write: Write, audit: AuditRecord) -> Result<()> {
        let data = serde_json::to_value(&bp).map_err(db)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached(sql::put_blueprint(write).postgres())
            .await
            .map_err(pg)?;
        tx.execute(&stmt, &[&bp.identifier, &data])
            .await
            .map_err(|e| conflict_or(e, || format!("blueprint `{}`", bp.identifier)))?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn delete_blueprint(
        &self,
        identifier: &str,
        with_entities: bool,
        audit: AuditRecord,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let count: i64 = tx
            .query_one(sql::COUNT_ENTITIES.postgres(), &[&identifier])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if count > 0 && !with_entities {
            return Err(crate::blueprint_in_use(identifier, count));
        }
        tx.execute(sql::DELETE_BLUEPRINT_EDGES.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        tx.execute(sql::DELETE_BLUEPRINT_ENTITIES.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        let deleted = tx
            .execute(sql::DELETE_BLUEPRINT.postgres(), &[&identifier])
            .await
            .map_err(pg)?;
        if deleted > 0 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted > 0)
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        self.one(&sql::GET_ENTITY, &[&blueprint, &identifier], rows::entity)
            .await
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(sql::put_entity(write).postgres())
            .await
            .map_err(pg)?;
        tx.execute(
            &insert,
            &[
                &e.blueprint,
                &e.identifier,
                &e.title,
                &e.icon,
                &Json(&e.team),
                &e.properties,
                &e.relations,
                &ms(e.created_at),
                &e.created_by,
                &ms(e.updated_at),
                &e.updated_by,
            ],
        )
        .await
        .map_err(|err| {
            conflict_or(err, || {
                format!("entity `{}` of blueprint `{}`", e.identifier, e.blueprint)
            })
        })?;
        let clear = tx
            .prepare_cached(sql::DELETE_EDGES.postgres())
            .await
            .map_err(pg)?;
        tx.execute(&clear, &[&e.blueprint, &e.identifier])
            .await
            .map_err(pg)?;
        let edge = tx
            .prepare_cached(sql::INSERT_EDGE.postgres())
            .await
            .map_err(pg)?;
        for r in &relations {
            tx.execute(
                &edge,
                &[
                    &e.blueprint,
                    &e.identifier,
                    &r.name,
                    &r.target.blueprint,
                    &r.target.identifier,
                ],
            )
            .await
            .map_err(pg)?;
        }
        insert_audit(&tx, &audit).await?;
        insert_events(&tx, crate::entity_event(&audit).as_ref()).await?;
        tx.commit().await.map_err(pg)?;
        self.statistics.wrote(&self.pool);
        Ok(())
    }

    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let edges = tx
            .prepare_cached(sql::DELETE_EDGES.postgres())
            .await
            .map_err(pg)?;
        let rows = tx
            .prepare_cached(sql::DELETE_ENTITY.postgres())
            .await
            .map_err(pg)?;
        for e in &entities {
            tx.execute(&edges, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
            tx.execute(&rows, &[&e.blueprint, &e.identifier])
                .await
                .map_err(pg)?;
        }
        for a in &audit {
            insert_audit(&tx, a).await?;
        }
        let events: Vec<_> = audit.iter().filter_map(crate::entity_event).collect();
        insert_events(&tx, &events).await?;
        tx.commit().await.map_err(pg)
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let key = &[&target.blueprint as _, &target.identifier as _];
        self.all(&sql::DEPENDENTS, key, rows::entity_ref).await
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let (text, params) = sql::search(q, limit, after, Dialect::Postgres)?;
        // Not a cached prepared statement: every query has its own text, and the pool's
        // statement caches never forget one.
        let params: Vec<_> = params.iter().map(bind).collect();
        let c = self.client().await?;
        c.query_typed(&text, &params)
            .await
            .map_err(pg)?
            .iter()
            .map(rows::entity)
            .collect()
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        self.count(&sql::COUNT_ENTITIES, &[&blueprint]).await
    }
}
