//! The rules as code: each top-level statement's parse tree against the
//! rules of [`super::rules`], with what earlier statements of the same run
//! did (tables created, `IS NOT NULL` checks added) and, when a database is
//! at hand, its [`Facts`].

use std::collections::{HashMap, HashSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ConstrType, Constraint, Node, ObjectType, RangeVar, RenameStmt,
    TransactionStmtKind, TypeName,
};

use super::builtins::{self, Volatility};
use super::facts::{Facts, TableName, Wanted};
use super::parse::Statement;
use super::renames::{self, Renames, Resolved};

/// A rule that matched a statement, before levels and sizes are applied.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The rule's id.
    pub rule: &'static str,
    /// The statement's line.
    pub line: usize,
    /// The statement, cut short.
    pub excerpt: String,
    /// The table it is about.
    pub table: Option<TableName>,
    /// What exactly matched.
    pub message: String,
    /// The table was created earlier in this run (so it is empty).
    pub new_table: bool,
    /// Without a database: the table was created by an earlier migration
    /// of the files linted, which may be applied and filled already.
    pub created_earlier: bool,
    /// The name the database knows the table by, when this run renamed it
    /// (`ALTER TABLE a RENAME TO b`: `b` is `a` there).
    pub known_as: Option<TableName>,
}

/// How one migration runs.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Inside a transaction snapguard opens (the default per migration, or
    /// `transaction: all`).
    pub wrapped: bool,
    /// A batched data migration (`-- snapguard:batch`).
    pub batched: bool,
    /// In the one transaction of every migration of the run
    /// (`transaction: all`): what an earlier one left open stays open.
    pub shared: bool,
}

/// The checker for one run: the migrations in the order they apply.
pub struct Checker<'f> {
    facts: Option<&'f Facts>,
    /// The server's major: the database's, else `lint.server_version`.
    server_major: Option<u32>,
    /// `timestamp` ↔ `timestamptz` changes in place: the session time
    /// zone is UTC on PostgreSQL 12+ (the database's, else
    /// `lint.time_zone` with `lint.server_version`); `None` when unknown.
    utc: Option<bool>,
    /// Where an unqualified name is created and found: the first schema of
    /// the `search_path` (the database's current schema when one is at
    /// hand, `public` otherwise; a `SET search_path` moves it).
    schema: String,
    /// Tables created in this run, by the name they were created under,
    /// with the migration (its index in the run) that created each.
    created: HashMap<Resolved, usize>,
    /// The migration being checked: its index in the run.
    input: usize,
    /// What this run renamed: every table and column below is keyed by
    /// its first name.
    renames: Renames,
    /// `CHECK (col IS NOT NULL)` added in this run, by constraint name;
    /// `true` once validated.
    not_null_checks: HashMap<String, (Resolved, String, bool)>,
    /// Column types this run gave, as `format_type` writes them: a later
    /// type change is judged from these, not from the database's.
    column_types: HashMap<(Resolved, String), String>,
    /// Constraints added `NOT VALID` in the transaction under way: a
    /// `VALIDATE` in the same one scans under the lock the `ADD` took.
    not_valid_open: HashSet<String>,
    /// Functions this run created, by name: `true` when volatile.
    functions: HashMap<String, bool>,
    /// Tables the migration being checked emptied (`TRUNCATE`, or a
    /// `DELETE` without `WHERE`): no row is left to fail a new `NOT NULL`
    /// column, though a `DELETE` leaves the pages a scan still reads.
    emptied: HashSet<Resolved>,
}

impl<'f> Checker<'f> {
    /// A checker that judges against `facts` when there are some, and
    /// without them takes the server's major and time zone from
    /// `settings`.
    pub fn new(facts: Option<&'f Facts>, settings: &super::Settings) -> Self {
        let server_major = facts.map(|f| f.server_major).or(settings.server_version);
        let utc = match facts {
            Some(f) => f.utc,
            None => settings
                .time_zone
                .as_deref()
                .map(|zone| super::facts::is_utc(zone) && server_major.is_some_and(|m| m >= 12)),
        };
        Checker {
            facts,
            server_major,
            utc,
            schema: facts
                .and_then(|f| f.current_schema.clone())
                .unwrap_or_else(|| "public".into()),
            created: HashMap::new(),
            input: 0,
            renames: Renames::default(),
            not_null_checks: HashMap::new(),
            not_valid_open: HashSet::new(),
            emptied: HashSet::new(),
            functions: HashMap::new(),
            column_types: HashMap::new(),
        }
    }

    /// What the database must be asked for `statements`, each object by
    /// the name the database knows it by (`renames` carries the run's
    /// renames from one migration to the next).
    pub fn wanted(statements: &[Statement], wanted: &mut Wanted, renames: &mut Renames) {
        // The database's current schema is not known yet: names resolve
        // in `public` unless the run sets a `search_path`, which only
        // matters for keeping renames apart.
        let mut schema = "public".to_owned();
        for s in statements {
            match &s.node {
                NodeEnum::AlterTableStmt(a) => {
                    let Some(table) = a.relation.as_ref().map(TableName::of) else {
                        continue;
                    };
                    for cmd in commands(&a.cmds) {
                        if cmd.subtype() == AlterTableType::AtAlterColumnType
                            || cmd.subtype() == AlterTableType::AtSetNotNull
                        {
                            wanted.columns.insert((
                                renames.table(&table, &schema),
                                renames.column(&table, &cmd.name, &schema),
                            ));
                        }
                        if let Some(NodeEnum::ColumnDef(col)) = def(cmd) {
                            for c in constraints(&col.constraints) {
                                if let Some(expr) = &c.raw_expr {
                                    functions_in(expr, &mut wanted.functions);
                                }
                            }
                        }
                    }
                    wanted.tables.insert(renames.table(&table, &schema));
                }
                NodeEnum::VariableSetStmt(v) if v.name == "search_path" => {
                    if let Some(first) = v.args.first().and_then(constant_text) {
                        schema = first;
                    }
                }
                other => {
                    for rv in relations(other) {
                        wanted
                            .tables
                            .insert(renames.table(&TableName::of(rv), &schema));
                    }
                }
            }
            if let NodeEnum::RenameStmt(r) = &s.node {
                renames.apply(r, &schema);
            }
        }
    }

    /// The rules' hits in one migration's `statements`.
    pub fn check(&mut self, statements: &[Statement], mode: Mode) -> Vec<Hit> {
        let mut hits = Vec::new();
        // A file that runs its own `BEGIN … COMMIT` (golang-migrate) is in
        // a transaction between them even when snapguard does not wrap it.
        let mut own_block = false;
        // Where the file's own `BEGIN` is, until its `COMMIT`.
        let mut open_begin: Option<&Statement> = None;
        if !mode.shared {
            self.not_valid_open.clear();
        }
        self.emptied.clear();
        for s in statements {
            let in_transaction = mode.wrapped || own_block;
            if !in_transaction {
                // Each statement commits on its own.
                self.not_valid_open.clear();
            }
            let mut found: Vec<(&'static str, Option<TableName>, String)> = Vec::new();
            let mut hit = |rule: &'static str, rv: Option<&RangeVar>, message: String| {
                found.push((rule, rv.map(TableName::of), message));
            };
            match &s.node {
                NodeEnum::TransactionStmt(t) => match t.kind() {
                    TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                        own_block = true;
                        open_begin = Some(s);
                    }
                    TransactionStmtKind::TransStmtCommit
                    | TransactionStmtKind::TransStmtRollback => {
                        own_block = false;
                        open_begin = None;
                        if !mode.wrapped {
                            self.not_valid_open.clear();
                        }
                    }
                    _ => {}
                },
                NodeEnum::CreateStmt(c) => {
                    if let Some(rv) = &c.relation {
                        let table = self.resolve(&TableName::of(rv));
                        // Its columns' types, for a later type change to
                        // be judged from (a folder linted without a
                        // database knows them only from here).
                        for element in &c.table_elts {
                            if let Some(NodeEnum::ColumnDef(col)) = &element.node
                                && let Some(t) = &col.type_name
                            {
                                self.column_types
                                    .insert((table.clone(), col.colname.clone()), formatted(t));
                            }
                        }
                        self.created.insert(table, self.input);
                    }
                }
                NodeEnum::CreateTableAsStmt(c) => {
                    if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                        let table = self.resolve(&TableName::of(rv));
                        self.created.insert(table, self.input);
                    }
                }
                NodeEnum::VariableSetStmt(v) if v.name == "search_path" => {
                    if let Some(first) = v.args.first().and_then(constant_text) {
                        self.schema = first;
                    }
                }
                // `SET TIME ZONE` / `SET timezone`: the zone a later
                // `timestamp` ↔ `timestamptz` change runs in.
                NodeEnum::VariableSetStmt(v) if v.name == "timezone" => {
                    if let Some(zone) = v.args.first().and_then(constant_text) {
                        self.utc = Some(
                            super::facts::is_utc(&zone)
                                && self.server_major.is_some_and(|m| m >= 12),
                        );
                    }
                }
                NodeEnum::IndexStmt(i) => {
                    let rv = i.relation.as_ref();
                    let table = rv.map(TableName::of);
                    let partitioned = table
                        .as_ref()
                        .and_then(|t| self.table(t))
                        .is_some_and(|t| t.partitioned);
                    if i.concurrent && in_transaction {
                        hit(
                            "concurrently_in_transaction",
                            rv,
                            "CREATE INDEX CONCURRENTLY in a migration that runs in a transaction"
                                .into(),
                        );
                    } else if partitioned && rv.is_some_and(|r| r.inh) {
                        hit(
                            "partition_lock",
                            rv,
                            "CREATE INDEX on a partitioned table locks and builds on every partition at once (CONCURRENTLY is not possible on the parent)".into(),
                        );
                    } else if !i.concurrent && rv.is_some_and(|r| r.inh) {
                        // `ON ONLY parent` builds nothing (an invalid index
                        // on the parent alone) and rejects CONCURRENTLY.
                        hit(
                            "index_not_concurrent",
                            rv,
                            format!(
                                "CREATE {}INDEX{} without CONCURRENTLY",
                                if i.unique { "UNIQUE " } else { "" },
                                if i.idxname.is_empty() {
                                    String::new()
                                } else {
                                    format!(" {}", i.idxname)
                                }
                            ),
                        );
                    }
                }
                NodeEnum::ReindexStmt(r) => {
                    let concurrent = r.params.iter().any(|p| def_elem_named(p, "concurrently"));
                    if concurrent && in_transaction {
                        hit(
                            "concurrently_in_transaction",
                            r.relation.as_ref(),
                            "REINDEX CONCURRENTLY in a migration that runs in a transaction".into(),
                        );
                    } else if !concurrent {
                        hit(
                            "reindex_not_concurrent",
                            r.relation.as_ref(),
                            "REINDEX without CONCURRENTLY".into(),
                        );
                    }
                }
                NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectIndex => {
                    if d.concurrent && in_transaction {
                        hit(
                            "concurrently_in_transaction",
                            None,
                            "DROP INDEX CONCURRENTLY in a migration that runs in a transaction"
                                .into(),
                        );
                    } else if !d.concurrent {
                        hit(
                            "drop_index_not_concurrent",
                            None,
                            format!(
                                "DROP INDEX{} without CONCURRENTLY",
                                dropped_names(&d.objects)
                            ),
                        );
                    }
                }
                NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => {
                    if in_transaction {
                        hit(
                            "concurrently_in_transaction",
                            None,
                            "VACUUM in a migration that runs in a transaction".into(),
                        );
                    }
                    if v.options.iter().any(|o| def_elem_named(o, "full")) {
                        let rels = vacuum_relations(&v.rels);
                        if rels.is_empty() {
                            hit("vacuum_full", None, "VACUUM FULL of every table".into());
                        }
                        for rv in rels {
                            hit("vacuum_full", Some(rv), "VACUUM FULL".into());
                        }
                    }
                }
                NodeEnum::CreatedbStmt(_)
                | NodeEnum::DropdbStmt(_)
                | NodeEnum::AlterSystemStmt(_)
                    if in_transaction =>
                {
                    let what = match &s.node {
                        NodeEnum::CreatedbStmt(_) => "CREATE DATABASE",
                        NodeEnum::DropdbStmt(_) => "DROP DATABASE",
                        _ => "ALTER SYSTEM",
                    };
                    hit(
                        "concurrently_in_transaction",
                        None,
                        format!("{what} in a migration that runs in a transaction"),
                    );
                }
                NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectTable => {
                    // A table this run created (a scratch table) is no
                    // release's.
                    let dropped: Vec<String> = qualified_names(&d.objects)
                        .into_iter()
                        .filter(|t| !self.is_new(t))
                        .map(|t| t.to_string())
                        .collect();
                    if !dropped.is_empty() {
                        hit(
                            "drop_table",
                            None,
                            format!("DROP TABLE {}", dropped.join(", ")),
                        );
                    }
                }
                NodeEnum::RefreshMatViewStmt(r) if !r.concurrent && !r.skip_data => hit(
                    "refresh_matview_not_concurrent",
                    r.relation.as_ref(),
                    "REFRESH MATERIALIZED VIEW without CONCURRENTLY".into(),
                ),
                NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => hit(
                    "rename_enum_value",
                    None,
                    format!("RENAME VALUE '{}' TO '{}'", e.old_val, e.new_val),
                ),
                NodeEnum::ClusterStmt(c) => {
                    hit("cluster", c.relation.as_ref(), "CLUSTER".into());
                }
                NodeEnum::LockStmt(l) => {
                    for n in &l.relations {
                        if let Some(NodeEnum::RangeVar(rv)) = &n.node {
                            hit(
                                "lock_table",
                                Some(rv),
                                format!("LOCK TABLE in {} mode", lock_mode_name(l.mode)),
                            );
                        }
                    }
                }
                NodeEnum::CreateFunctionStmt(f) => {
                    if let Some(Some(NodeEnum::String(name))) =
                        f.funcname.last().map(|n| n.node.as_ref())
                    {
                        self.functions
                            .insert(name.sval.clone(), declared_volatile(&f.options));
                    }
                }
                NodeEnum::TruncateStmt(t) => {
                    for n in &t.relations {
                        if let Some(NodeEnum::RangeVar(rv)) = &n.node {
                            self.emptied.insert(self.resolve(&TableName::of(rv)));
                        }
                    }
                }
                NodeEnum::UpdateStmt(u) if !mode.batched && !bookkeeping(u.relation.as_ref()) => {
                    hit(
                        "unbatched_data_change",
                        u.relation.as_ref(),
                        one_statement("UPDATE", u.where_clause.is_none()),
                    )
                }
                NodeEnum::DeleteStmt(d) if !mode.batched && !bookkeeping(d.relation.as_ref()) => {
                    if let Some(rv) = &d.relation
                        && d.where_clause.is_none()
                    {
                        self.emptied.insert(self.resolve(&TableName::of(rv)));
                    }
                    hit(
                        "unbatched_data_change",
                        d.relation.as_ref(),
                        one_statement("DELETE", d.where_clause.is_none()),
                    )
                }
                NodeEnum::AlterEnumStmt(e) if e.old_val.is_empty() && in_transaction => {
                    let old_server = self.server_major.map(|major| major < 12);
                    if old_server != Some(false) {
                        hit(
                            "enum_add_value_in_transaction",
                            None,
                            format!(
                                "ALTER TYPE … ADD VALUE '{}' in a transaction{}",
                                e.new_val,
                                if old_server.is_none() {
                                    " (fails on PostgreSQL 11 and older; the server was not consulted: set `lint.server_version`)"
                                } else {
                                    ""
                                }
                            ),
                        );
                    }
                }
                NodeEnum::RenameStmt(r) => match r.rename_type() {
                    ObjectType::ObjectColumn => hit(
                        "rename_column",
                        r.relation.as_ref(),
                        format!("RENAME COLUMN {} TO {}", r.subname, r.newname),
                    ),
                    ObjectType::ObjectTable => hit(
                        "rename_table",
                        r.relation.as_ref(),
                        format!("RENAME TO {}", r.newname),
                    ),
                    ObjectType::ObjectSchema => hit(
                        "rename_schema",
                        None,
                        format!("ALTER SCHEMA {} RENAME TO {}", r.subname, r.newname),
                    ),
                    _ => {}
                },
                NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectTable => {
                    let Some(rv) = a.relation.as_ref() else {
                        continue;
                    };
                    for cmd in commands(&a.cmds) {
                        for (rule, message) in self.alter_table(rv, cmd) {
                            hit(rule, Some(rv), message);
                        }
                    }
                }
                _ => {}
            }
            for (rule, table, message) in found {
                let new_table = table.as_ref().is_some_and(|t| self.is_new(t));
                let created_earlier = self.facts.is_none()
                    && !new_table
                    && table
                        .as_ref()
                        .is_some_and(|t| self.created.contains_key(&self.resolve(t)));
                let known_as = table
                    .as_ref()
                    .and_then(|t| self.renames.renamed(t, &self.schema));
                hits.push(Hit {
                    rule,
                    line: s.line,
                    excerpt: s.excerpt.clone(),
                    table,
                    message,
                    new_table,
                    created_earlier,
                    known_as,
                });
            }
            // A rename takes effect for the statements after it.
            if let NodeEnum::RenameStmt(r) = &s.node {
                self.rename_constraint(r);
                self.renames.apply(r, &self.schema);
            }
        }
        self.input += 1;
        if let Some(begin) = open_begin {
            hits.push(Hit {
                rule: "unclosed_transaction",
                line: begin.line,
                excerpt: begin.excerpt.clone(),
                table: None,
                message: "BEGIN without a COMMIT before the end of the migration".into(),
                new_table: false,
                created_earlier: false,
                known_as: None,
            });
        }
        hits
    }

    /// The hits of one `ALTER TABLE` subcommand.
    fn alter_table(&mut self, rv: &RangeVar, cmd: &AlterTableCmd) -> Vec<(&'static str, String)> {
        let table = TableName::of(rv);
        let mut out = Vec::new();
        match cmd.subtype() {
            AlterTableType::AtAddConstraint => {
                let Some(NodeEnum::Constraint(c)) = def(cmd) else {
                    return out;
                };
                match c.contype() {
                    ConstrType::ConstrForeign | ConstrType::ConstrCheck => {
                        if let Some(column) = not_null_check_column(c) {
                            let column = self.renames.column(&table, &column, &self.schema);
                            self.not_null_checks.insert(
                                c.conname.clone(),
                                (self.resolve(&table), column, !c.skip_validation),
                            );
                        }
                        if c.skip_validation && !c.conname.is_empty() {
                            self.not_valid_open.insert(c.conname.clone());
                        }
                        if !c.skip_validation {
                            let kind = if c.contype() == ConstrType::ConstrForeign {
                                "FOREIGN KEY"
                            } else {
                                "CHECK"
                            };
                            out.push((
                                "constraint_not_valid",
                                format!("ADD {kind}{} without NOT VALID", named(&c.conname)),
                            ));
                        }
                    }
                    ConstrType::ConstrPrimary
                    | ConstrType::ConstrUnique
                    | ConstrType::ConstrExclusion
                        if c.indexname.is_empty() =>
                    {
                        let kind = match c.contype() {
                            ConstrType::ConstrPrimary => "PRIMARY KEY",
                            ConstrType::ConstrUnique => "UNIQUE",
                            _ => "EXCLUDE",
                        };
                        out.push((
                            "unique_without_index",
                            format!("ADD {kind}{} builds its index in place", named(&c.conname)),
                        ));
                    }
                    _ => {}
                }
            }
            AlterTableType::AtValidateConstraint => {
                if let Some(entry) = self.not_null_checks.get_mut(&cmd.name) {
                    entry.2 = true;
                }
                if self.not_valid_open.contains(&cmd.name) {
                    out.push((
                        "constraint_not_valid",
                        format!(
                            "VALIDATE CONSTRAINT {} in the same transaction as its ADD … NOT VALID: the scan runs under the lock the ADD took, held to the end of the transaction",
                            cmd.name
                        ),
                    ));
                }
            }
            AlterTableType::AtSetLogged | AlterTableType::AtSetUnLogged => out.push((
                "set_logged",
                format!(
                    "SET {}LOGGED rewrites the table",
                    if cmd.subtype() == AlterTableType::AtSetUnLogged {
                        "UN"
                    } else {
                        ""
                    }
                ),
            )),
            AlterTableType::AtSetNotNull => {
                let column = &cmd.name;
                let (first, first_column) = (
                    self.resolve(&table),
                    self.renames.column(&table, column, &self.schema),
                );
                let known_as = self.renames.table(&table, &self.schema);
                let prepared = self
                    .not_null_checks
                    .values()
                    .any(|(t, c, validated)| *validated && *t == first && *c == first_column)
                    || self.facts.is_some_and(|f| {
                        f.server_major >= 12 && f.has_not_null_check(&known_as, &first_column)
                    });
                if !prepared {
                    out.push((
                        "set_not_null",
                        format!("ALTER COLUMN {column} SET NOT NULL without a validated CHECK ({column} IS NOT NULL)"),
                    ));
                }
            }
            AlterTableType::AtAlterColumnType => {
                let Some(NodeEnum::ColumnDef(col)) = def(cmd) else {
                    return out;
                };
                let Some(new) = col.type_name.as_ref() else {
                    return out;
                };
                let using = col
                    .raw_default
                    .as_deref()
                    .is_some_and(|e| !using_is_the_column(e, &cmd.name, new));
                let column = self.renames.column(&table, &cmd.name, &self.schema);
                let key = (self.resolve(&table), column.clone());
                let from_run = self.column_types.get(&key).cloned();
                let old = from_run.clone().or_else(|| {
                    let known_as = self.renames.table(&table, &self.schema);
                    self.facts
                        .and_then(|f| f.column_type(&known_as, &column))
                        .map(str::to_owned)
                });
                let new_name = type_text(new);
                self.column_types.insert(key, formatted(new));
                let rules = TypeRules {
                    binary_casts: self.facts.map(|f| &f.binary_casts),
                    utc: self.utc,
                };
                let zone_unknown = rules.utc.is_none()
                    && old.as_deref().is_some_and(|old| {
                        zone_change(
                            &split_format_type(old).0,
                            &split_format_type(&formatted(new)).0,
                        )
                    });
                match old.as_deref().map(|old| rewrites(old, new, using, rules)) {
                    Some(false) => {}
                    Some(true) => out.push((
                        "column_type_rewrite",
                        format!(
                            "ALTER COLUMN {} TYPE {new_name} (from {}{}){}",
                            cmd.name,
                            old.unwrap_or_default(),
                            if from_run.is_some() {
                                ", as an earlier statement of these migrations left it"
                            } else {
                                ""
                            },
                            if using { " USING …" } else { "" }
                        ) + if zone_unknown {
                            ": in place when the session time zone is UTC (PostgreSQL 12+): the database was not asked, set `lint.time_zone`"
                        } else {
                            ""
                        },
                    )),
                    None => out.push((
                        "column_type_rewrite",
                        format!(
                            "ALTER COLUMN {} TYPE {new_name}: rewrites unless it only widens the current type (the database was not consulted)",
                            cmd.name
                        ),
                    )),
                }
            }
            AlterTableType::AtAddColumn => {
                let Some(NodeEnum::ColumnDef(col)) = def(cmd) else {
                    return out;
                };
                // serial is `DEFAULT nextval(…)`: a value for every row, so
                // the table is rewritten, as for an identity column.
                let type_name = col.type_name.as_ref().map(type_text).unwrap_or_default();
                if let Some(t) = col.type_name.as_ref() {
                    let column = self.renames.column(&table, &col.colname, &self.schema);
                    self.column_types
                        .insert((self.resolve(&table), column), formatted(t));
                }
                if SERIAL_TYPES.contains(&type_name.as_str()) {
                    out.push((
                        "add_column_volatile_default",
                        format!(
                            "ADD COLUMN {} {type_name}: nextval() for every row rewrites the table",
                            col.colname
                        ),
                    ));
                }
                let has_default = constraints(&col.constraints).any(|c| {
                    c.contype() == ConstrType::ConstrDefault
                        && !c.raw_expr.as_ref().is_some_and(|e| is_null_constant(e))
                });
                // A value for every existing row: a default, an identity,
                // a generated expression or serial's nextval.
                let gets_values = has_default
                    || SERIAL_TYPES.contains(&type_name.as_str())
                    || constraints(&col.constraints).any(|c| {
                        matches!(
                            c.contype(),
                            ConstrType::ConstrIdentity | ConstrType::ConstrGenerated
                        )
                    });
                let not_null = constraints(&col.constraints).any(|c| {
                    matches!(
                        c.contype(),
                        ConstrType::ConstrNotnull | ConstrType::ConstrPrimary
                    )
                });
                let empty = self.is_new(&table) || self.emptied.contains(&self.resolve(&table));
                if not_null && !gets_values && !empty {
                    out.push((
                        "add_column_not_null",
                        format!(
                            "ADD COLUMN {} NOT NULL without a DEFAULT: fails when the table has rows",
                            col.colname
                        ),
                    ));
                }
                for c in constraints(&col.constraints) {
                    match c.contype() {
                        ConstrType::ConstrDefault => {
                            let old_server = self.server_major.is_some_and(|major| major < 11);
                            let volatile = c.raw_expr.as_ref().and_then(|e| self.volatile_call(e));
                            if let Some((function, volatility)) = volatile {
                                out.push((
                                    "add_column_volatile_default",
                                    if volatility == Volatility::Volatile {
                                        format!("ADD COLUMN {} DEFAULT {function}(…): volatile, computed for every row", col.colname)
                                    } else {
                                        format!("ADD COLUMN {} DEFAULT {function}(…): volatility unknown, not a built-in function and the database was not asked (a volatile default is computed for every row)", col.colname)
                                    },
                                ));
                            } else if old_server {
                                out.push((
                                    "add_column_volatile_default",
                                    format!("ADD COLUMN {} with a DEFAULT before PostgreSQL 11", col.colname),
                                ));
                            }
                        }
                        ConstrType::ConstrGenerated => out.push((
                            "add_column_volatile_default",
                            format!("ADD COLUMN {} GENERATED … STORED: computed for every row", col.colname),
                        )),
                        ConstrType::ConstrIdentity => out.push((
                            "add_column_volatile_default",
                            format!("ADD COLUMN {} GENERATED … AS IDENTITY: a value for every row rewrites the table", col.colname),
                        )),
                        // A new column's foreign key is checked against
                        // every row when they get a value (its default),
                        // under the ADD COLUMN's ACCESS EXCLUSIVE.
                        ConstrType::ConstrForeign if has_default && !c.skip_validation => out.push((
                            "constraint_not_valid",
                            format!("ADD COLUMN {} REFERENCES … with a DEFAULT: every row is checked against the referenced table", col.colname),
                        )),
                        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => out.push((
                            "unique_without_index",
                            format!("ADD COLUMN {} with an inline UNIQUE / PRIMARY KEY builds its index in place", col.colname),
                        )),
                        _ => {}
                    }
                }
            }
            AlterTableType::AtDropColumn => {
                out.push(("drop_column", format!("DROP COLUMN {}", cmd.name)))
            }
            AlterTableType::AtDetachPartition => {
                let concurrent =
                    matches!(def(cmd), Some(NodeEnum::PartitionCmd(p)) if p.concurrent);
                if !concurrent {
                    out.push((
                        "partition_lock",
                        "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent".into(),
                    ));
                }
            }
            _ => {}
        }
        out
    }

    fn table(&self, t: &TableName) -> Option<super::facts::Table> {
        let known_as = self.renames.table(t, &self.schema);
        self.facts.and_then(|f| f.table(&known_as))
    }

    /// Whether `t` is empty because this run creates it. With a database,
    /// a table it already has is not new, whatever the files say (`lint
    /// --all` reads applied migrations too). Without one, only a table
    /// the same migration created is: an earlier file may have been
    /// applied long ago, and its table filled since, so its size is
    /// unknown rather than nil.
    fn is_new(&self, t: &TableName) -> bool {
        let Some(&input) = self.created.get(&self.resolve(t)) else {
            return false;
        };
        match self.facts {
            Some(_) => self.table(t).is_none(),
            None => input == self.input,
        }
    }

    /// A migration that could not be checked (it does not parse) still
    /// takes its place in the run.
    pub fn skip_input(&mut self) {
        self.input += 1;
    }

    /// `t` as the run resolves it, by its first name (see [`Renames`]).
    fn resolve(&self, t: &TableName) -> Resolved {
        renames::resolve(&self.renames.table(t, &self.schema), &self.schema)
    }

    /// `ALTER TABLE … RENAME CONSTRAINT a TO b`: what the run knows of `a`
    /// (a `NOT VALID` check, not validated yet) holds for `b`.
    fn rename_constraint(&mut self, r: &RenameStmt) {
        if r.rename_type() != ObjectType::ObjectTabconstraint {
            return;
        }
        if let Some(check) = self.not_null_checks.remove(&r.subname) {
            self.not_null_checks.insert(r.newname.clone(), check);
        }
        if self.not_valid_open.remove(&r.subname) {
            self.not_valid_open.insert(r.newname.clone());
        }
    }

    /// The first function an expression calls that is volatile, else the
    /// first whose volatility is unknown: a function this run created is
    /// as its `CREATE FUNCTION` says (volatile unless it says otherwise),
    /// any other as the database says, or without one as PostgreSQL's
    /// own catalogue does ([`builtins`]).
    fn volatile_call(&self, expr: &Node) -> Option<(String, Volatility)> {
        let mut names = HashSet::new();
        functions_in(expr, &mut names);
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        let judged: Vec<(String, Volatility)> = names
            .into_iter()
            .map(|n| {
                let v = match (self.functions.get(&n), self.facts) {
                    (Some(&volatile), _) => fixed_unless(volatile),
                    (None, Some(f)) => fixed_unless(f.is_volatile(&n)),
                    (None, None) => builtins::volatility(&n),
                };
                (n, v)
            })
            .collect();
        let first = |wanted| judged.iter().find(|(_, v)| *v == wanted).cloned();
        first(Volatility::Volatile).or_else(|| first(Volatility::Unknown))
    }
}

/// The table (or tables) a statement other than `ALTER TABLE` is about.
fn relations(node: &NodeEnum) -> Vec<&RangeVar> {
    match node {
        NodeEnum::IndexStmt(i) => i.relation.iter().collect(),
        NodeEnum::ReindexStmt(r) => r.relation.iter().collect(),
        NodeEnum::ClusterStmt(c) => c.relation.iter().collect(),
        NodeEnum::UpdateStmt(u) => u.relation.iter().collect(),
        NodeEnum::DeleteStmt(d) => d.relation.iter().collect(),
        NodeEnum::RenameStmt(r) => r.relation.iter().collect(),
        NodeEnum::VacuumStmt(v) => vacuum_relations(&v.rels),
        NodeEnum::LockStmt(l) => l
            .relations
            .iter()
            .filter_map(|n| match &n.node {
                Some(NodeEnum::RangeVar(rv)) => Some(rv),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn vacuum_relations(rels: &[Node]) -> Vec<&RangeVar> {
    rels.iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::VacuumRelation(v)) => v.relation.as_ref(),
            _ => None,
        })
        .collect()
}

/// The serial pseudo-types, as the parser names them.
const SERIAL_TYPES: &[&str] = &[
    "serial",
    "bigserial",
    "smallserial",
    "serial2",
    "serial4",
    "serial8",
];

/// `NULL` written as a constant (`DEFAULT NULL` gives rows no value).
fn is_null_constant(expr: &Node) -> bool {
    matches!(&expr.node, Some(NodeEnum::AConst(c)) if c.isnull)
}

/// The names a `DROP` lists, for its message (` a, b`).
fn dropped_names(objects: &[Node]) -> String {
    let names: Vec<String> = name_parts(objects).iter().map(|p| p.join(".")).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" {}", names.join(", "))
    }
}

/// The tables a `DROP TABLE` names.
fn qualified_names(objects: &[Node]) -> Vec<TableName> {
    name_parts(objects)
        .into_iter()
        .filter_map(|parts| match parts.as_slice() {
            [.., schema, name] => Some(TableName {
                schema: Some(schema.clone()),
                name: name.clone(),
            }),
            [name] => Some(TableName {
                schema: None,
                name: name.clone(),
            }),
            [] => None,
        })
        .collect()
}

/// The dotted parts of each name a `DROP` statement lists
/// (`app.orders` → `["app", "orders"]`).
fn name_parts(objects: &[Node]) -> Vec<Vec<String>> {
    objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => Some(
                l.items
                    .iter()
                    .filter_map(|i| match &i.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// A constant's text (`SET search_path TO app` gives `app`).
fn constant_text(node: &Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(pg_query::protobuf::a_const::Val::Sval(s)) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn commands(cmds: &[Node]) -> impl Iterator<Item = &AlterTableCmd> {
    cmds.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::AlterTableCmd(c)) => Some(c.as_ref()),
        _ => None,
    })
}

fn def(cmd: &AlterTableCmd) -> Option<&NodeEnum> {
    cmd.def.as_ref().and_then(|d| d.node.as_ref())
}

fn constraints(nodes: &[Node]) -> impl Iterator<Item = &Constraint> {
    nodes.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
        _ => None,
    })
}

/// `UPDATE of every row in one statement`.
fn one_statement(verb: &str, every_row: bool) -> String {
    let rows = if every_row { "of every row " } else { "" };
    format!("{verb} {rows}in one statement")
}

/// The migration tools' history tables and the system catalogues: a few
/// rows each, written by tools, never an application's data to batch.
const HISTORY_TABLES: &[&str] = &[
    "_sqlx_migrations",
    "schema_migrations",
    "__diesel_schema_migrations",
    "flyway_schema_history",
    "ar_internal_metadata",
];

/// A statement on a catalogue (`pg_catalog`, or an unqualified `pg_…`,
/// which resolves there first) or a migration tool's history table.
fn bookkeeping(rv: Option<&RangeVar>) -> bool {
    let Some(rv) = rv else {
        return false;
    };
    match rv.schemaname.as_str() {
        "pg_catalog" | "information_schema" | "snapguard" => true,
        "" => rv.relname.starts_with("pg_") || HISTORY_TABLES.contains(&rv.relname.as_str()),
        _ => HISTORY_TABLES.contains(&rv.relname.as_str()),
    }
}

/// An option `name` that is on: `(FULL)`, `(FULL TRUE)`, `(FULL 1)`; not
/// `(FULL FALSE)`, `(FULL OFF)` or `(FULL 0)`.
fn def_elem_named(node: &Node, name: &str) -> bool {
    let Some(NodeEnum::DefElem(d)) = &node.node else {
        return false;
    };
    if !d.defname.eq_ignore_ascii_case(name) {
        return false;
    }
    let off = match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
        None => false,
        Some(NodeEnum::String(s)) => ["false", "off", "no", "0"]
            .iter()
            .any(|w| s.sval.eq_ignore_ascii_case(w)),
        Some(NodeEnum::Boolean(b)) => !b.boolval,
        Some(NodeEnum::Integer(i)) => i.ival == 0,
        Some(_) => false,
    };
    !off
}

fn named(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" {name}")
    }
}

/// `CHECK (col IS NOT NULL)`: the column.
fn not_null_check_column(c: &Constraint) -> Option<String> {
    if c.contype() != ConstrType::ConstrCheck {
        return None;
    }
    let Some(NodeEnum::NullTest(t)) = c.raw_expr.as_ref().and_then(|e| e.node.as_ref()) else {
        return None;
    };
    if t.nulltesttype() != pg_query::protobuf::NullTestType::IsNotNull {
        return None;
    }
    match t.arg.as_ref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::ColumnRef(r)) => match r.fields.last().and_then(|f| f.node.as_ref()) {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Every function name called anywhere in `node`, through the crate's
/// own walk of the tree (which visits every nested node).
fn functions_in(node: &Node, out: &mut HashSet<String>) {
    let Some(inner) = &node.node else {
        return;
    };
    for (n, _depth, _context, _has_filter) in inner.nodes() {
        if let pg_query::NodeRef::FuncCall(f) = n
            && let Some(Some(NodeEnum::String(s))) = f.funcname.last().map(|x| x.node.as_ref())
        {
            out.insert(s.sval.clone());
        }
    }
}

/// A known volatility: volatile or not.
fn fixed_unless(volatile: bool) -> Volatility {
    if volatile {
        Volatility::Volatile
    } else {
        Volatility::Fixed
    }
}

/// Whether a `CREATE FUNCTION` with these options makes a volatile
/// function: it does unless it says `IMMUTABLE` or `STABLE`.
fn declared_volatile(options: &[Node]) -> bool {
    !options.iter().any(|o| {
        matches!(&o.node, Some(NodeEnum::DefElem(d))
            if d.defname == "volatility"
                && matches!(d.arg.as_deref().and_then(|a| a.node.as_ref()),
                    Some(NodeEnum::String(s)) if s.sval != "volatile"))
    })
}

fn lock_mode_name(mode: i32) -> &'static str {
    match mode {
        1 => "ACCESS SHARE",
        2 => "ROW SHARE",
        3 => "ROW EXCLUSIVE",
        4 => "SHARE UPDATE EXCLUSIVE",
        5 => "SHARE",
        6 => "SHARE ROW EXCLUSIVE",
        7 => "EXCLUSIVE",
        _ => "ACCESS EXCLUSIVE",
    }
}

/// A type name as the parser holds it: `varchar(20)`, `numeric(10,2)`.
fn type_text(t: &TypeName) -> String {
    let name = t
        .names
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) if s.sval != "pg_catalog" => Some(s.sval.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".");
    let mods = typmods(t);
    let bounds = if t.array_bounds.is_empty() { "" } else { "[]" };
    if mods.is_empty() {
        format!("{name}{bounds}")
    } else {
        let mods: Vec<String> = mods.iter().map(i64::to_string).collect();
        format!("{name}({}){bounds}", mods.join(","))
    }
}

fn typmods(t: &TypeName) -> Vec<i64> {
    t.typmods
        .iter()
        .filter_map(|m| match &m.node {
            Some(NodeEnum::AConst(c)) => match &c.val {
                Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The type as `format_type` writes it (`varchar(20)` is `character
/// varying(20)`), to compare with the database's.
fn formatted(t: &TypeName) -> String {
    let name = type_text(t);
    let base = name
        .split(['(', '['])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let mods: Vec<String> = typmods(t).iter().map(i64::to_string).collect();
    let mods = if mods.is_empty() {
        String::new()
    } else {
        format!("({})", mods.join(","))
    };
    let bounds = if t.array_bounds.is_empty() { "" } else { "[]" };
    format!("{}{mods}{bounds}", canonical_type(&base))
}

/// The name `format_type` gives a type written `name`.
fn canonical_type(name: &str) -> &str {
    match name {
        "varchar" | "character varying" => "character varying",
        "numeric" | "decimal" => "numeric",
        "varbit" | "bit varying" => "bit varying",
        "int4" | "integer" | "int" => "integer",
        "int8" | "bigint" => "bigint",
        "int2" | "smallint" => "smallint",
        "bool" | "boolean" => "boolean",
        "float8" | "double precision" => "double precision",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        "float4" | "real" => "real",
        "bpchar" | "char" | "character" => "character",
        other => other,
    }
}

/// What decides whether a type change rewrites, beyond the types
/// themselves: the server's binary-coercible casts and session time zone,
/// when a database is at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeRules<'f> {
    /// `pg_cast` entries with `castmethod = 'b'`, by `format_type` names;
    /// `None`: the known few (`varchar` ↔ `text`, `cidr` → `inet`).
    pub binary_casts: Option<&'f HashSet<(String, String)>>,
    /// The session time zone never leaves UTC (PostgreSQL 12+ changes
    /// `timestamp` ↔ `timestamptz` in place then); `None`: unknown.
    pub utc: Option<bool>,
}

/// Binary-coercible casts assumed without a database.
const KNOWN_BINARY_CASTS: &[(&str, &str)] = &[
    ("character varying", "text"),
    ("text", "character varying"),
    ("cidr", "inet"),
];

/// Whether changing a column of type `old` (as `format_type` writes it) to
/// `new` rewrites the table, by PostgreSQL's own rules: the same type with
/// a typmod that admits every old value (`varchar`/`varbit` widened or
/// unbounded, `numeric` gaining precision at the same scale, `timestamp`,
/// `time`, `interval` gaining or losing their precision limit); a
/// binary-coercible cast (`pg_cast`) to a type without a limiting typmod;
/// `timestamp` ↔ `timestamptz` when the session time zone is UTC. A
/// `USING` clause that is more than the column (or the column cast to the
/// new type) rewrites; so does anything else.
fn rewrites(old: &str, new: &TypeName, using: bool, rules: TypeRules<'_>) -> bool {
    if using || !new.array_bounds.is_empty() || old.ends_with("[]") {
        return true;
    }
    let (old_base, old_mods) = split_format_type(old);
    let (new_base, mods) = split_format_type(&formatted(new));
    if old_base == new_base {
        return !typmod_admits(&new_base, &old_mods, &mods);
    }
    if zone_change(&old_base, &new_base) {
        return rules.utc != Some(true) || !typmod_admits("timestamp", &old_mods, &mods);
    }
    let binary = match rules.binary_casts {
        Some(casts) => casts.contains(&(old_base.clone(), new_base.clone())),
        None => KNOWN_BINARY_CASTS.contains(&(old_base.as_str(), new_base.as_str())),
    };
    !(binary && mods.is_empty())
}

/// Whether the typmod `new` admits every value of `old` for a type whose
/// base name is `base`, so PostgreSQL relabels instead of rewriting.
fn typmod_admits(base: &str, old: &[i64], new: &[i64]) -> bool {
    if new.is_empty() {
        return true;
    }
    match base {
        "character varying" | "bit varying" => {
            old.first().zip(new.first()).is_some_and(|(o, n)| n >= o)
        }
        "numeric" => match (old, new) {
            ([op, os], [np, ns]) => np >= op && ns == os,
            ([op], [np]) => np >= op,
            _ => false,
        },
        b if b.starts_with("timestamp") || b.starts_with("time ") || b == "time" => {
            old.first().zip(new.first()).is_some_and(|(o, n)| n >= o)
        }
        // `interval(p)` is (full range, p) as written, (p) as formatted.
        "interval" => match (old.last(), new) {
            (Some(o), [range, n]) if *range == INTERVAL_FULL_RANGE => n >= o,
            (Some(o), [n]) => n >= o,
            _ => false,
        },
        _ => old == new,
    }
}

/// `INTERVAL_FULL_RANGE`: an `interval(p)` without fields.
const INTERVAL_FULL_RANGE: i64 = 0x7FFF;

/// `character varying(20)` → (`character varying`, [20]);
/// `timestamp` to `timestamptz` or back (bases as `format_type` writes
/// them): in place only when the session time zone is UTC.
fn zone_change(old_base: &str, new_base: &str) -> bool {
    let zoned = |b: &str| b == "timestamp with time zone" || b == "timestamp without time zone";
    old_base != new_base && zoned(old_base) && zoned(new_base)
}

/// `timestamp(3) without time zone` → (`timestamp without time zone`, [3]).
fn split_format_type(t: &str) -> (String, Vec<i64>) {
    match (t.find('('), t.find(')')) {
        (Some(open), Some(close)) if open < close => {
            let mods = t[open + 1..close]
                .split(',')
                .filter_map(|m| m.trim().parse().ok())
                .collect();
            let base = format!("{} {}", t[..open].trim(), t[close + 1..].trim());
            (base.trim().to_owned(), mods)
        }
        _ => (t.trim().to_owned(), Vec::new()),
    }
}

/// Whether `USING expr` is only the column itself, or the column cast to
/// the new type: PostgreSQL then relabels as without `USING`.
fn using_is_the_column(expr: &Node, column: &str, new: &TypeName) -> bool {
    let is_column = |n: &Node| match &n.node {
        Some(NodeEnum::ColumnRef(c)) => {
            matches!(c.fields.last().and_then(|f| f.node.as_ref()), Some(NodeEnum::String(s)) if s.sval == column)
        }
        _ => false,
    };
    match &expr.node {
        Some(NodeEnum::TypeCast(c)) => {
            c.arg.as_deref().is_some_and(is_column)
                && c.type_name
                    .as_ref()
                    .is_some_and(|t| formatted(t) == formatted(new))
        }
        _ => is_column(expr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(sql: &str) -> TypeName {
        let parsed = super::super::parse::statements(sql, 1).unwrap();
        let NodeEnum::AlterTableStmt(a) = &parsed[0].node else {
            panic!()
        };
        let cmd = commands(&a.cmds).next().unwrap();
        let Some(NodeEnum::ColumnDef(c)) = def(cmd) else {
            panic!()
        };
        c.type_name.clone().unwrap()
    }

    #[test]
    fn binary_compatible_type_changes_do_not_rewrite() {
        let t = |sql: &str| type_of(&format!("ALTER TABLE t ALTER COLUMN c TYPE {sql}"));
        assert!(!rewrites(
            "character varying(20)",
            &t("varchar(40)"),
            false,
            TypeRules::default()
        ));
        assert!(rewrites(
            "character varying(40)",
            &t("varchar(20)"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "character varying(20)",
            &t("varchar"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "character varying(20)",
            &t("text"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "text",
            &t("varchar"),
            false,
            TypeRules::default()
        ));
        assert!(rewrites(
            "text",
            &t("varchar(10)"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "numeric(10,2)",
            &t("numeric(12,2)"),
            false,
            TypeRules::default()
        ));
        assert!(rewrites(
            "numeric(10,2)",
            &t("numeric(12,3)"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "numeric(10,2)",
            &t("numeric"),
            false,
            TypeRules::default()
        ));
        assert!(rewrites(
            "integer",
            &t("bigint"),
            false,
            TypeRules::default()
        ));
        assert!(!rewrites(
            "integer",
            &t("int4"),
            false,
            TypeRules::default()
        ));
        assert!(rewrites("text", &t("jsonb"), false, TypeRules::default()));
        assert!(rewrites(
            "character varying(20)",
            &t("varchar(40)"),
            true,
            TypeRules::default()
        ));
    }
}
