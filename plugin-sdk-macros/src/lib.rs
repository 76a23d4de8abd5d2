//! The derive macros of `kirana-sdk`. Use them through the SDK (`kirana_sdk::FromRow`,
//! or the prelude), never from this crate directly: the code they generate names the
//! SDK by its absolute path, `::kirana_sdk`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Error, Fields, LitStr};

/// Implements `kirana_sdk::sql::FromRow` for a struct with named fields: each field is
/// read with `row.get("field")?`, from the column named like the field (case does not
/// matter, a raw identifier `r#type` reads `type`). A missing column or a value of
/// another type is the same `CapError::Invalid` a hand-written `row.get` gives.
///
/// Field attributes:
/// - `#[row(rename = "column")]` reads the field from another column;
/// - `#[row(default)]` reads nothing and starts the field as `Default::default()`, for
///   a field the caller fills afterwards (lines of an order, say).
///
/// ```ignore
/// use kirana_sdk::prelude::*;
/// use kirana_sdk::sql;
///
/// #[derive(FromRow)]
/// struct Notification {
///     id: String,
///     #[row(rename = "is_read")]
///     read: bool,
///     note: Option<String>,      // NULL reads as None
///     #[row(default)]
///     tags: Vec<String>,         // filled by a second query
/// }
///
/// let rows: Vec<Notification> =
///     sql::query_as("SELECT id, is_read, note FROM notifications", &[])?;
/// ```
///
/// Tuple structs, unit structs, enums and unions are refused, as is any other `row`
/// attribute: the generated code would otherwise have to guess a column.
#[proc_macro_derive(FromRow, attributes(row))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    from_row(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// How one field is filled.
enum Source {
    /// `row.get(column)?`.
    Column(String),
    /// `Default::default()`.
    Default,
}

fn from_row(input: &DeriveInput) -> Result<TokenStream2, Error> {
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) => {
                return Err(Error::new_spanned(
                    &s.fields,
                    format!(
                        "#[derive(FromRow)] needs named fields: a column is read into the \
                         field of the same name, and `{name}` is a tuple struct; write \
                         `struct {name} {{ column_name: Type, .. }}`"
                    ),
                ))
            }
            Fields::Unit => {
                return Err(Error::new(
                    name.span(),
                    format!(
                        "#[derive(FromRow)] needs named fields: `{name}` has none to read; \
                         write `struct {name} {{ column_name: Type, .. }}`"
                    ),
                ))
            }
        },
        Data::Enum(e) => {
            return Err(Error::new(
                e.enum_token.span,
                format!(
                    "#[derive(FromRow)] works on a struct with named fields, and `{name}` is \
                     an enum; read the column into a String field and parse it, or \
                     implement `FromRow` by hand"
                ),
            ))
        }
        Data::Union(u) => {
            return Err(Error::new(
                u.union_token.span,
                format!(
                    "#[derive(FromRow)] works on a struct with named fields, and `{name}` is \
                     a union; use a struct"
                ),
            ))
        }
    };

    let mut errors: Option<Error> = None;
    let mut note = |e: Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("row")) {
        note(Error::new_spanned(
            attr,
            "#[row(..)] goes on fields (`rename = \"column\"` or `default`); the struct \
             itself takes none",
        ));
    }
    let params: Vec<&syn::Ident> = input.generics.type_params().map(|p| &p.ident).collect();
    let mut bounds = Vec::new();
    let mut inits = Vec::new();
    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let ty = &field.ty;
        let generic = mentions(ty.to_token_stream(), &params);
        match source(field) {
            Ok(Source::Column(column)) => {
                if generic {
                    bounds.push(quote! { #ty: ::kirana_sdk::sql::FromValue });
                }
                // Spanned at the type, so a type without `FromValue` is reported there.
                inits.push(quote_spanned! {ty.span()=>
                    #ident: row.get::<#ty>(#column)?
                });
            }
            Ok(Source::Default) => {
                if generic {
                    bounds.push(quote! { #ty: ::core::default::Default });
                }
                inits.push(quote! {
                    #ident: ::core::default::Default::default()
                });
            }
            Err(e) => note(e),
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }

    // A field whose type names a type parameter bounds it (`T: FromValue`), as serde's
    // derives do, so `struct Total<T> { sum: T }` needs no hand-written bound.
    let mut generics = input.generics.clone();
    if !bounds.is_empty() {
        let clause = generics.make_where_clause();
        for bound in bounds {
            clause.predicates.push(syn::parse_quote!(#bound));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::kirana_sdk::sql::FromRow for #name #ty_generics #where_clause {
            fn from_row(
                row: &::kirana_sdk::sql::Row<'_>,
            ) -> ::core::result::Result<Self, ::kirana_sdk::CapError> {
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }
        }
    })
}

/// Whether `tokens` (a field's type) names one of `params`.
fn mentions(tokens: TokenStream2, params: &[&syn::Ident]) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => params.iter().any(|p| **p == i),
        proc_macro2::TokenTree::Group(g) => mentions(g.stream(), params),
        _ => false,
    })
}

/// The field's `#[row(..)]` attributes, checked: at most one `rename`, a non-empty
/// column name, and no `rename` beside `default` (which reads no column).
fn source(field: &syn::Field) -> Result<Source, Error> {
    let ident = field.ident.as_ref().map(|i| i.unraw().to_string());
    let mut rename: Option<LitStr> = None;
    let mut default: Option<proc_macro2::Span> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("row")) {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            return Err(Error::new_spanned(
                attr,
                "write #[row(rename = \"column\")] or #[row(default)]",
            ));
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let column = match meta.value()?.parse::<syn::Expr>()? {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(column),
                        ..
                    }) => column,
                    other => {
                        return Err(Error::new_spanned(
                            &other,
                            format!(
                                "`rename` takes the column name as a string: rename = \"{}\"",
                                other.to_token_stream()
                            ),
                        ))
                    }
                };
                if column.value().is_empty() {
                    return Err(Error::new(column.span(), "the column name is empty"));
                }
                if rename.is_some() {
                    return Err(meta.error("`rename` is given twice; keep one"));
                }
                rename = Some(column);
                Ok(())
            } else if meta.path.is_ident("default") {
                if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    return Err(meta.error("`default` takes no value: write #[row(default)]"));
                }
                if default.is_some() {
                    return Err(meta.error("`default` is given twice; keep one"));
                }
                default = Some(meta.path.span());
                Ok(())
            } else {
                let what = meta
                    .path
                    .get_ident()
                    .map_or_else(|| "this".to_string(), |i| format!("`{i}`"));
                Err(meta.error(format!(
                    "unknown #[row] attribute {what}: expected `rename = \"column\"` (read \
                     another column) or `default` (read nothing, start with \
                     Default::default())"
                )))
            }
        })?;
    }
    match (rename, default) {
        (Some(column), Some(span)) => Err(Error::new(
            span,
            format!(
                "`default` reads no column, so `rename = {:?}` would be ignored; keep one \
                 of the two",
                column.value()
            ),
        )),
        (_, Some(_)) => Ok(Source::Default),
        (Some(column), None) => Ok(Source::Column(column.value())),
        (None, None) => ident
            .map(Source::Column)
            .ok_or_else(|| Error::new(field.span(), "#[derive(FromRow)] needs named fields")),
    }
}
