//! Splitting a migration file into its statements, for Citus: it propagates DDL to the
//! workers by its query text and refuses a string of several statements.
//!
//! A small lexer, enough for our migration files: `--` and nested `/* */` comments,
//! `'…'` strings (with `''`, and backslash escapes in `E'…'`), `"…"` identifiers and
//! `$tag$…$tag$` dollar quoting. A `;` outside all of these ends a statement.

/// The statements of `sql`, in order, trimmed, without their `;`. Pieces holding only
/// whitespace and comments are left out.
pub fn split(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let (mut start, mut i, mut has_code) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match b {
            b'-' if next == Some(b'-') => {
                i = find_from(bytes, i, b"\n").map_or(bytes.len(), |end| end + 1);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b';' => {
                if has_code {
                    statements.push(sql[start..i].trim());
                }
                (start, has_code) = (i + 1, false);
            }
            _ if b.is_ascii_whitespace() => {}
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && !(i > 1 && is_ident(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
                has_code = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false);
                has_code = true;
                continue;
            }
            b'$' if i == 0 || !is_ident(bytes[i - 1]) => {
                has_code = true;
                if let Some(tag_end) = dollar_tag_end(bytes, i) {
                    let tag = &bytes[i..=tag_end];
                    i = find_from(bytes, tag_end + 1, tag)
                        .map_or(bytes.len(), |end| end + tag.len());
                    continue;
                }
            }
            _ => has_code = true,
        }
        i += 1;
    }
    if has_code {
        statements.push(sql[start..].trim());
    }
    statements
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The first position at or after `from` where `needle` starts.
fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Past the end of the quoted text opening at `i` (a doubled quote stays inside).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 1,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 1;
                } else {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Past the end of the (possibly nested) block comment opening at `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The position of the closing `$` of a dollar-quote tag opening at `i` (`$$`,
/// `$body$`), or `None` for a `$` that opens none (`$1`).
fn dollar_tag_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    while let Some(&b) = bytes.get(j) {
        match b {
            b'$' => return Some(j),
            _ if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => j += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_on_semicolons_and_drops_empty_pieces() {
        assert_eq!(
            split("create table a (id int);\n\n  create index on a (id) ;;\n"),
            ["create table a (id int)", "create index on a (id)"]
        );
        assert_eq!(split("select 1"), ["select 1"]);
        assert!(split("  \n-- only a comment;\n/* and; this */ ").is_empty());
    }

    #[test]
    fn semicolons_in_comments_strings_and_identifiers_do_not_split() {
        let sql = "-- a comment; with a semicolon\n\
                   insert into t values ('a;b', 'it''s; fine', E'back\\';slash');\n\
                   create table \"odd;name\"\"x\" (id int); /* block; /* nested; */ still; */ select 2;";
        assert_eq!(
            split(sql),
            [
                "-- a comment; with a semicolon\n\
                 insert into t values ('a;b', 'it''s; fine', E'back\\';slash')",
                "create table \"odd;name\"\"x\" (id int)",
                "/* block; /* nested; */ still; */ select 2",
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_stay_whole() {
        let sql = "do $$ begin perform 1; execute 'x' using $1; end $$;\n\
                   create function f() returns int language sql as $body$ select 1; $$ $body$;\n\
                   select a$b from t;";
        assert_eq!(
            split(sql),
            [
                "do $$ begin perform 1; execute 'x' using $1; end $$",
                "create function f() returns int language sql as $body$ select 1; $$ $body$",
                "select a$b from t",
            ]
        );
    }

    #[test]
    fn the_shared_migration_with_a_do_block_splits_into_its_four_statements() {
        let sql = include_str!("../../migrations/shared/0003_authz.sql");
        let statements = split(sql);
        assert_eq!(statements.len(), 4, "{statements:#?}");
        assert!(statements[1].starts_with("do $$") && statements[1].ends_with("end $$"));
        assert!(statements[3].contains("add column tokens_valid_after timestamptz"));
    }
}
