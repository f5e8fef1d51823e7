//! [`CatalogData`] on SQLite.

use super::audit::insert_audit;
use super::outbox::{event_rows, insert_events};
use super::{SqliteStore, bind, conflict_or};
use crate::query::Dialect;
use crate::rows::{self, ms};
use crate::sql;
use crate::{
    AuditRecord, Blueprint, CatalogData, Entity, EntityRef, Query, Relation, Result, Write, db,
};
use rusqlite::{OptionalExtension, params, params_from_iter};

#[async_trait::async_trait]
impl CatalogData for SqliteStore {
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(sql::LIST_BLUEPRINTS.sqlite())
                .map_err(db)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
            rows.map(|r| serde_json::from_str(&r.map_err(db)?).map_err(db))
                .collect()
        })
        .await
    }

    async fn get_blueprint(&self, identifier: &str) -> Result<Option<Blueprint>> {
        let id = identifier.to_owned();
        self.read(move |c| {
            let data: Option<String> = c
                .query_row(sql::GET_BLUEPRINT.sqlite(), [id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            data.map(|d| serde_json::from_str(&d).map_err(db))
                .transpose()
        })
        .await
    }

    async fn put_blueprint(&self, bp: Blueprint, write: Write, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            let data = serde_json::to_string(&bp).map_err(db)?;
            c.execute(
                sql::put_blueprint(write).sqlite(),
                params![bp.identifier, data],
            )
            .map_err(|e| conflict_or(e, || format!("blueprint `{}`", bp.identifier)))?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn delete_blueprint(
        &self,
        identifier: &str,
        with_entities: bool,
        audit: AuditRecord,
    ) -> Result<bool> {
        let id = identifier.to_owned();
        self.write(move |c| {
            let count: i64 = c
                .query_row(sql::COUNT_ENTITIES.sqlite(), [&id], |r| r.get(0))
                .map_err(db)?;
            if count > 0 && !with_entities {
                return Err(crate::blueprint_in_use(&id, count));
            }
            c.execute(sql::DELETE_BLUEPRINT_EDGES.sqlite(), [&id])
                .map_err(db)?;
            c.execute(sql::DELETE_BLUEPRINT_ENTITIES.sqlite(), [&id])
                .map_err(db)?;
            let deleted = c
                .execute(sql::DELETE_BLUEPRINT.sqlite(), [&id])
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        let key = [blueprint.to_owned(), identifier.to_owned()];
        self.one(&sql::GET_ENTITY, key, |r| rows::entity(r)).await
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        let events = event_rows(&crate::entity_event(&audit).into_iter().collect::<Vec<_>>());
        self.write(move |c| {
            c.prepare_cached(sql::put_entity(write).sqlite())
                .map_err(db)?
                .execute(params![
                    e.blueprint,
                    e.identifier,
                    e.title,
                    e.icon,
                    serde_json::to_string(&e.team).map_err(db)?,
                    e.properties.to_string(),
                    e.relations.to_string(),
                    ms(e.created_at),
                    e.created_by,
                    ms(e.updated_at),
                    e.updated_by,
                ])
                .map_err(|err| {
                    conflict_or(err, || {
                        format!("entity `{}` of blueprint `{}`", e.identifier, e.blueprint)
                    })
                })?;
            c.prepare_cached(sql::DELETE_EDGES.sqlite())
                .map_err(db)?
                .execute([&e.blueprint, &e.identifier])
                .map_err(db)?;
            let mut insert = c.prepare_cached(sql::INSERT_EDGE.sqlite()).map_err(db)?;
            for r in &relations {
                insert
                    .execute(params![
                        e.blueprint,
                        e.identifier,
                        r.name,
                        r.target.blueprint,
                        r.target.identifier
                    ])
                    .map_err(db)?;
            }
            insert_audit(c, &audit)?;
            insert_events(c, &events)
        })
        .await
    }

    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()> {
        let events: Vec<_> = audit.iter().filter_map(crate::entity_event).collect();
        let events = event_rows(&events);
        self.write(move |c| {
            for e in &entities {
                c.execute(sql::DELETE_EDGES.sqlite(), [&e.blueprint, &e.identifier])
                    .map_err(db)?;
                c.execute(sql::DELETE_ENTITY.sqlite(), [&e.blueprint, &e.identifier])
                    .map_err(db)?;
            }
            audit.iter().try_for_each(|a| insert_audit(c, a))?;
            insert_events(c, &events)
        })
        .await
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let key = [target.blueprint.clone(), target.identifier.clone()];
        self.all(&sql::DEPENDENTS, key, |r| rows::entity_ref(r))
            .await
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let (text, params) = sql::search(q, limit, after, Dialect::Sqlite)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&text).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(params.iter().map(bind)), |r| {
                    rows::entity(r)
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        self.count(&sql::COUNT_ENTITIES, [blueprint.to_owned()])
            .await
    }
}
