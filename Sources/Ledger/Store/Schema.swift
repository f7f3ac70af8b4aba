import GRDB

/// The store's schema, applied by GRDB's migrator. Migrations are append-only.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL
                ) WITHOUT ROWID;

                CREATE TABLE block (
                    height INTEGER PRIMARY KEY NOT NULL,
                    hash BLOB NOT NULL UNIQUE,
                    time INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    header BLOB NOT NULL
                );

                -- rowid is arrival order: it orders readings inside a block and pages queries.
                CREATE TABLE reading (
                    rowid INTEGER PRIMARY KEY,
                    id BLOB NOT NULL UNIQUE,
                    device TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    time INTEGER NOT NULL,
                    encoded BLOB NOT NULL,
                    block INTEGER REFERENCES block(height),
                    leaf INTEGER,
                    UNIQUE (device, seq)
                );
                CREATE INDEX reading_device_time ON reading(device, time);
                CREATE INDEX reading_block ON reading(block, leaf);
                """)
        }
        return m
    }
}
