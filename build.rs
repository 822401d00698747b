// `sqlx::migrate!` embeds the migration files at compile time but does not tell cargo
// about them: without this, a new migration file is missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
