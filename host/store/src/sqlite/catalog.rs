//! SqliteStore: the [`crate::CatalogData`] methods.

use super::*;

#[async_trait::async_trait]
impl crate::CatalogData for SqliteStore {
    async fn list_blueprints(&self) -> Result<Vec<Blueprint>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT data FROM blueprints ORDER BY identifier")
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
                .query_row(
                    "SELECT data FROM blueprints WHERE identifier = ?1",
                    [id],
                    |r| r.get(0),
                )
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
            let sql = match write {
                Write::Create => "INSERT INTO blueprints (identifier, data) VALUES (?1, ?2)",
                Write::Replace => {
                    "INSERT OR REPLACE INTO blueprints (identifier, data) VALUES (?1, ?2)"
                }
            };
            c.execute(sql, params![bp.identifier, data])
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
                .query_row(
                    "SELECT count(*) FROM entities WHERE blueprint = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if count > 0 && !with_entities {
                return Err(StoreError::InUse(format!(
                    "blueprint `{id}` has {count} entities; delete them first or pass \
                     ?delete_entities=true"
                )));
            }
            c.execute("DELETE FROM entity_relations WHERE blueprint = ?1", [&id])
                .map_err(db)?;
            c.execute("DELETE FROM entities WHERE blueprint = ?1", [&id])
                .map_err(db)?;
            let deleted = c
                .execute("DELETE FROM blueprints WHERE identifier = ?1", [&id])
                .map_err(db)?;
            if deleted > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    async fn get_entity(&self, blueprint: &str, identifier: &str) -> Result<Option<Entity>> {
        let (bp, id) = (blueprint.to_owned(), identifier.to_owned());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.blueprint = ?1 AND e.identifier = ?2"
            ))
            .map_err(db)?
            .query_row([bp, id], entity)
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn put_entity(
        &self,
        e: Entity,
        relations: Vec<Relation>,
        write: Write,
        audit: AuditRecord,
    ) -> Result<()> {
        self.write(move |c| {
            let verb = match write {
                Write::Create => "INSERT",
                Write::Replace => "INSERT OR REPLACE",
            };
            c.prepare_cached(&format!(
                "{verb} INTO entities (blueprint, identifier, title, icon, team, properties, \
                 relations, created_at, created_by, updated_at, updated_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
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
            c.prepare_cached(
                "DELETE FROM entity_relations WHERE blueprint = ?1 AND identifier = ?2",
            )
            .map_err(db)?
            .execute([&e.blueprint, &e.identifier])
            .map_err(db)?;
            let mut insert = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO entity_relations (blueprint, identifier, relation, \
                     target_blueprint, target_identifier) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db)?;
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
            insert_audit(c, &audit)
        })
        .await
    }

    async fn delete_entities(
        &self,
        entities: Vec<EntityRef>,
        audit: Vec<AuditRecord>,
    ) -> Result<()> {
        self.write(move |c| {
            for e in &entities {
                c.execute(
                    "DELETE FROM entity_relations WHERE blueprint = ?1 AND identifier = ?2",
                    [&e.blueprint, &e.identifier],
                )
                .map_err(db)?;
                c.execute(
                    "DELETE FROM entities WHERE blueprint = ?1 AND identifier = ?2",
                    [&e.blueprint, &e.identifier],
                )
                .map_err(db)?;
            }
            audit.iter().try_for_each(|a| insert_audit(c, a))
        })
        .await
    }

    async fn dependents(&self, target: &EntityRef) -> Result<Vec<EntityRef>> {
        let target = target.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT DISTINCT blueprint, identifier FROM entity_relations \
                     WHERE target_blueprint = ?1 AND target_identifier = ?2 ORDER BY 1, 2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([&target.blueprint, &target.identifier], |r| {
                    Ok(EntityRef {
                        blueprint: r.get(0)?,
                        identifier: r.get(1)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn search(
        &self,
        q: &Query,
        limit: usize,
        after: Option<EntityRef>,
    ) -> Result<Vec<Entity>> {
        let mut sql = query::compile(q, Dialect::Sqlite)?;
        if let Some(after) = after {
            let n = sql.params.len();
            sql.text = format!(
                "({}) AND (e.blueprint, e.identifier) > (?{}, ?{})",
                sql.text,
                n + 1,
                n + 2
            );
            sql.params.push(Param::Text(after.blueprint));
            sql.params.push(Param::Text(after.identifier));
        }
        let text = format!(
            "SELECT {ENTITY_COLUMNS} FROM entities e WHERE {} ORDER BY e.blueprint, e.identifier LIMIT {limit}",
            sql.text
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&text).map_err(db)?;
            let rows = stmt
                .query_map(params_from_iter(sql.params.iter().map(bind)), entity)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db)
        })
        .await
    }

    async fn count_entities(&self, blueprint: &str) -> Result<u64> {
        let bp = blueprint.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM entities WHERE blueprint = ?1",
                [bp],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(db)
        })
        .await
    }
}
