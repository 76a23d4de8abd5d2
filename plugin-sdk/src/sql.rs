//! The plugin's own database. Write SQL that runs on SQLite and PostgreSQL: `$1`
//! parameters, `TEXT` ids and timestamps, `BIGINT` integers and money, `BOOLEAN` flags.
//! Rows map to structs with `#[derive(FromRow)]` (see [`FromRow`](trait@FromRow)):
//! `sql::query_as::<Product>("SELECT id, name, price FROM products", &[])?`.

use crate::bindings::kirana::platform::sql as wit;
use crate::error::CapError;

pub use wit::{SqlDialect as Dialect, Value};

/// `#[derive(FromRow)]`: see [`FromRow`](trait@FromRow).
pub use kirana_sdk_macros::FromRow;

/// Builds a parameter list: `params![id, name, 3]`.
#[macro_export]
macro_rules! params {
    () => { ::std::vec::Vec::<$crate::sql::Value>::new() };
    ($($v:expr),+ $(,)?) => { ::std::vec![$($crate::sql::ToValue::to_value(&$v)),+] };
}

/// Conversion into a SQL parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value { Value::Int(i64::from(*self)) }
        }
    )*};
}
int_to_value!(i8, i16, i32, i64, u8, u16, u32);

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Boolean(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

/// Conversion out of a column value.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Boolean(b) => Some(i64::from(*b)),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}
impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| i32::try_from(i).ok())
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u32::try_from(i).ok())
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Boolean(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row with its column names.
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
    /// Where the next [`Row::get`] starts looking: `FromRow` impls read columns in the
    /// order they were selected, so the search usually succeeds at its first probe.
    /// `None` when two columns share a name: then the first one always wins.
    next: Option<std::cell::Cell<usize>>,
}

impl Row<'_> {
    /// The column `name` as `T`; `invalid` when absent or of another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, CapError> {
        let n = self.columns.len();
        let start = self.next.as_ref().map_or(0, |c| c.get());
        let idx = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.columns[i].eq_ignore_ascii_case(name))
            .ok_or_else(|| CapError::Invalid(format!("no column {name} in the result")))?;
        if let Some(next) = &self.next {
            next.set(idx + 1);
        }
        let value = &self.values[idx];
        T::from_value(value).ok_or_else(|| {
            CapError::Invalid(format!(
                "column {name} holds {value:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The column at `idx` as `T`.
    pub fn at<T: FromValue>(&self, idx: usize) -> Result<T, CapError> {
        let value = self
            .values
            .get(idx)
            .ok_or_else(|| CapError::Invalid(format!("no column {idx} in the result")))?;
        T::from_value(value)
            .ok_or_else(|| CapError::Invalid(format!("column {idx} holds {value:?}")))
    }
}

/// A struct that can be read from a row. Derive it (`#[derive(FromRow)]`, re-exported
/// under the same name here, at the crate root and in the prelude, as serde does)
/// when each field is one column: the derive reads field `f` with `row.get("f")?`,
/// `#[row(rename = "col")]` reads another column and `#[row(default)]` reads nothing
/// (`Default::default()`, for a field filled afterwards). Implement it by hand when a
/// field is computed from columns or parsed from one.
///
/// ```ignore
/// use kirana_sdk::prelude::*;
///
/// #[derive(FromRow)]
/// struct Payment {
///     id: String,
///     amount: i64,
///     #[row(rename = "captured_at")]
///     captured: Option<String>,
///     #[row(default)]
///     refunds: Vec<Refund>,
/// }
/// ```
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, CapError>;
}

/// A query's rows.
pub struct Rows(wit::RowSet);

impl Rows {
    pub fn len(&self) -> usize {
        self.0.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.rows.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        let columns = &self.0.columns;
        let unique = columns
            .iter()
            .enumerate()
            .all(|(i, c)| !columns[..i].iter().any(|d| d.eq_ignore_ascii_case(c)));
        self.0.rows.iter().map(move |values| Row {
            columns,
            values,
            next: unique.then(|| std::cell::Cell::new(0)),
        })
    }
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }
    /// Every row as `T`.
    pub fn to_vec<T: FromRow>(&self) -> Result<Vec<T>, CapError> {
        self.iter().map(|r| T::from_row(&r)).collect()
    }
    /// The first row as `T`, if any.
    pub fn one<T: FromRow>(&self) -> Result<Option<T>, CapError> {
        self.first().map(|r| T::from_row(&r)).transpose()
    }
    /// The first column of the first row, e.g. of `SELECT COUNT(*)`.
    pub fn scalar<T: FromValue>(&self) -> Result<T, CapError> {
        self.first()
            .ok_or_else(|| CapError::Invalid("the query returned no row".into()))?
            .at(0)
    }
}

/// Which SQL this plugin's database speaks.
pub fn dialect() -> Dialect {
    wit::dialect()
}

pub fn query(statement: &str, params: &[Value]) -> Result<Rows, CapError> {
    wit::query(statement, params).map(Rows)
}

/// Every row as `T`.
pub fn query_as<T: FromRow>(statement: &str, params: &[Value]) -> Result<Vec<T>, CapError> {
    query(statement, params)?.to_vec()
}

/// The first row as `T`, if any.
pub fn query_one<T: FromRow>(statement: &str, params: &[Value]) -> Result<Option<T>, CapError> {
    query(statement, params)?.one()
}

/// Runs a statement; returns the rows affected.
pub fn execute(statement: &str, params: &[Value]) -> Result<u64, CapError> {
    wit::execute(statement, params)
}

/// Runs several statements in order (for migrations).
pub fn execute_batch(statements: &[&str]) -> Result<(), CapError> {
    for s in statements {
        execute(s, &[])?;
    }
    Ok(())
}

/// A transaction inside the call's own (a savepoint); rolled back, with the events
/// published since it began, when dropped without [`Tx::commit`]. Its work is durable
/// once the call commits (an answer below 500, or `on_event` returning `Ok`).
pub struct Tx(wit::Transaction);

/// Starts a transaction (a savepoint in the call's transaction).
pub fn begin() -> Result<Tx, CapError> {
    wit::Transaction::begin().map(Tx)
}

impl Tx {
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, CapError> {
        self.0.query(statement, params).map(Rows)
    }
    pub fn query_as<T: FromRow>(
        &self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<T>, CapError> {
        self.query(statement, params)?.to_vec()
    }
    pub fn query_one<T: FromRow>(
        &self,
        statement: &str,
        params: &[Value],
    ) -> Result<Option<T>, CapError> {
        self.query(statement, params)?.one()
    }
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, CapError> {
        self.0.execute(statement, params)
    }
    pub fn commit(self) -> Result<(), CapError> {
        self.0.commit()
    }
    pub fn rollback(self) -> Result<(), CapError> {
        self.0.rollback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct P {
        id: String,
        price: i64,
        active: bool,
        note: Option<String>,
    }
    impl FromRow for P {
        fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
            Ok(P {
                id: r.get("id")?,
                price: r.get("price")?,
                active: r.get("active")?,
                note: r.get("note")?,
            })
        }
    }

    #[test]
    fn rows_map_to_structs() {
        let rows = Rows(wit::RowSet {
            columns: vec!["id".into(), "price".into(), "active".into(), "note".into()],
            rows: vec![vec![
                Value::Text("p1".into()),
                Value::Int(4500),
                Value::Int(1),
                Value::Null,
            ]],
        });
        let p: P = rows.one().unwrap().unwrap();
        assert_eq!(
            (p.id.as_str(), p.price, p.active, p.note),
            ("p1", 4500, true, None)
        );
        let v = params![1, "a", Some(2i64), None::<String>, true];
        assert_eq!(v.len(), 5);
        assert!(matches!(v[3], Value::Null));
    }

    /// The derive's output for a plain struct: what `P`'s hand-written impl does.
    #[derive(crate::FromRow, Debug, PartialEq)]
    struct Derived {
        id: String,
        price: i64,
        active: bool,
        note: Option<String>,
    }

    /// Both attributes, a raw identifier, and a generic field.
    #[derive(crate::FromRow, Debug, PartialEq)]
    struct Renamed<T> {
        r#type: String,
        #[row(rename = "is_read")]
        read: bool,
        #[row(default)]
        lines: Vec<String>,
        #[row(default)]
        count: i64,
        amount: T,
    }

    fn one_row(columns: &[&str], values: Vec<Value>) -> Rows {
        Rows(wit::RowSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![values],
        })
    }

    #[test]
    fn a_derived_struct_reads_the_columns_named_like_its_fields() {
        let rows = Rows(wit::RowSet {
            columns: vec!["note".into(), "PRICE".into(), "id".into(), "active".into()],
            rows: vec![
                vec![
                    Value::Null,
                    Value::Int(4500),
                    Value::Text("p1".into()),
                    Value::Boolean(true),
                ],
                vec![
                    Value::Text("fragile".into()),
                    Value::Int(90),
                    Value::Text("p2".into()),
                    Value::Int(0),
                ],
            ],
        });
        let got: Vec<Derived> = rows.to_vec().unwrap();
        assert_eq!(
            got,
            [
                Derived {
                    id: "p1".into(),
                    price: 4500,
                    active: true,
                    note: None
                },
                Derived {
                    id: "p2".into(),
                    price: 90,
                    active: false,
                    note: Some("fragile".into())
                },
            ]
        );
        // The same values as the hand-written impl reads.
        let manual: Vec<P> = rows.to_vec().unwrap();
        for (d, m) in got.iter().zip(&manual) {
            assert_eq!(
                (&d.id, d.price, d.active, &d.note),
                (&m.id, m.price, m.active, &m.note)
            );
        }
    }

    #[test]
    fn rename_reads_another_column_and_default_reads_none() {
        // No `lines` or `count` column: `#[row(default)]` does not look for one.
        let rows = one_row(
            &["type", "is_read", "amount", "read"],
            vec![
                Value::Text("order".into()),
                Value::Int(1),
                Value::Float(2.5),
                Value::Boolean(false),
            ],
        );
        let got: Renamed<f64> = rows.one().unwrap().unwrap();
        assert_eq!(
            got,
            Renamed {
                r#type: "order".into(),
                read: true,
                lines: Vec::new(),
                count: 0,
                amount: 2.5,
            }
        );
    }

    #[test]
    fn a_missing_column_or_a_wrong_type_is_the_error_row_get_gives() {
        let rows = one_row(
            &["id", "price", "active"],
            vec![Value::Text("p1".into()), Value::Int(1), Value::Int(1)],
        );
        let derived = rows.one::<Derived>().unwrap_err();
        let manual = rows.one::<P>().unwrap_err();
        assert!(
            matches!(&derived, CapError::Invalid(m) if m == "no column note in the result"),
            "{derived:?}"
        );
        assert_eq!(format!("{derived:?}"), format!("{manual:?}"));

        let rows = one_row(
            &["id", "price", "active", "note"],
            vec![
                Value::Text("p1".into()),
                Value::Text("cheap".into()),
                Value::Int(1),
                Value::Null,
            ],
        );
        let derived = rows.one::<Derived>().unwrap_err();
        assert!(
            matches!(&derived, CapError::Invalid(m)
                if m.starts_with("column price holds") && m.ends_with("\"cheap\"), not a i64")),
            "{derived:?}"
        );
        assert_eq!(
            format!("{derived:?}"),
            format!("{:?}", rows.one::<P>().unwrap_err())
        );

        // A renamed field is looked up, and reported, by its column.
        let rows = one_row(
            &["type", "read", "amount"],
            vec![Value::Text("t".into()), Value::Int(1), Value::Int(3)],
        );
        let err = rows.one::<Renamed<i64>>().unwrap_err();
        assert!(
            matches!(&err, CapError::Invalid(m) if m == "no column is_read in the result"),
            "{err:?}"
        );
    }

    #[test]
    fn columns_are_found_in_any_order_and_any_case() {
        let rows = Rows(wit::RowSet {
            columns: vec!["id".into(), "price".into(), "note".into()],
            rows: vec![vec![Value::Text("p1".into()), Value::Int(7), Value::Null]],
        });
        let r = rows.first().unwrap();
        assert_eq!(r.get::<Option<String>>("note").unwrap(), None);
        assert_eq!(r.get::<String>("ID").unwrap(), "p1");
        assert_eq!(r.get::<i64>("price").unwrap(), 7);
        assert_eq!(r.get::<i64>("price").unwrap(), 7);
        assert_eq!(r.get::<String>("id").unwrap(), "p1");
        assert!(r.get::<i64>("missing").is_err());
    }

    #[test]
    fn with_repeated_column_names_the_first_always_wins() {
        let rows = Rows(wit::RowSet {
            columns: vec!["id".into(), "name".into(), "ID".into()],
            rows: vec![vec![
                Value::Text("first".into()),
                Value::Text("n".into()),
                Value::Text("second".into()),
            ]],
        });
        let r = rows.first().unwrap();
        assert_eq!(r.get::<String>("name").unwrap(), "n");
        assert_eq!(r.get::<String>("id").unwrap(), "first");
        assert_eq!(r.get::<String>("id").unwrap(), "first");
    }
}
