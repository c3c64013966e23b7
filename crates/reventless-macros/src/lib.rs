//! Derive macros for reventless messages.
//!
//! `#[derive(Event)]` and `#[derive(Command)]` implement `Message` for an enum
//! (one name per variant) or a struct (one name): the stable wire names and the
//! DCB tags taken from fields marked `#[tag]`.
//!
//! - `#[tag]` on `category_id` gives the tag key `category` (`_id` / `_ids`
//!   suffix dropped); `#[tag("cat")]` names the key explicitly.
//! - A collection field (`Vec`, sets, `Option`) gives one tag per element.
//! - The wire name is the variant (or struct) name, or its `#[serde(rename)]`.
//! - `#[event(version = 3, upcasters = [v1_to_v2, v2_to_v3])]` on an event's
//!   variant (or on an event struct) declares the current version of that
//!   wire type's data and one upcaster per older version
//!   (`fn(serde_json::Value) -> serde_json::Value`), checked here.
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, parse_macro_input};

#[proc_macro_derive(Event, attributes(tag, event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    derive(input, "Event")
}

#[proc_macro_derive(Command, attributes(tag))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    derive(input, "Command")
}

fn derive(input: TokenStream, marker: &str) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input, marker) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Where the spec types live as seen from the crate using the derive.
fn spec_path() -> TokenStream2 {
    use proc_macro_crate::{FoundCrate, crate_name};
    if let Ok(found) = crate_name("reventless") {
        return match found {
            FoundCrate::Itself => quote!(crate::spec),
            FoundCrate::Name(name) => {
                let ident = Ident::new(&name, Span::call_site());
                quote!(::#ident::spec)
            }
        };
    }
    match crate_name("reventless-spec") {
        Ok(FoundCrate::Itself) => quote!(crate),
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        Err(_) => quote!(::reventless::spec),
    }
}

fn expand(input: &DeriveInput, marker: &str) -> syn::Result<TokenStream2> {
    if marker != "Event"
        && let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("event"))
    {
        return Err(syn::Error::new_spanned(attr, "#[event(..)] is for events; commands are not stored"));
    }
    if let Data::Enum(_) = input.data {
        reject_unsupported_serde(&input.attrs)?;
    }
    let spec = spec_path();
    let ty = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let marker = format_ident!("{marker}");

    let mut names = Vec::new();
    let mut name_arms = Vec::new();
    let mut tag_arms = Vec::new();
    let mut versions = Vec::new();
    match &input.data {
        Data::Enum(data) => {
            if let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("event")) {
                return Err(syn::Error::new_spanned(
                    attr,
                    "put #[event(version = ..)] on the variant whose data changed shape: versions are per event type",
                ));
            }
            for variant in &data.variants {
                let wire = serde_rename(&variant.attrs)?.unwrap_or_else(|| variant.ident.to_string());
                if let Some(version) = event_version(&variant.attrs)? {
                    versions.push((wire.clone(), version));
                }
                let ident = &variant.ident;
                let (pattern, adds) = bind_fields(&variant.fields)?;
                names.push(wire.clone());
                let wildcard = match &variant.fields {
                    Fields::Named(_) => quote!({ .. }),
                    Fields::Unnamed(_) => quote!((..)),
                    Fields::Unit => quote!(),
                };
                name_arms.push(quote!(Self::#ident #wildcard => #wire,));
                tag_arms.push(quote!(Self::#ident #pattern => { #(#adds)* }));
            }
        }
        Data::Struct(data) => {
            let wire = serde_rename(&input.attrs)?.unwrap_or_else(|| ty.to_string());
            if let Some(version) = event_version(&input.attrs)? {
                versions.push((wire.clone(), version));
            }
            names.push(wire.clone());
            name_arms.push(quote!(_ => #wire,));
            let (pattern, adds) = bind_fields(&data.fields)?;
            tag_arms.push(quote!(Self #pattern => { #(#adds)* }));
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(ty, "a message must be an enum or a struct"));
        }
    }
    let is_enum = matches!(input.data, Data::Enum(_));
    let tag_body =
        if tag_arms.is_empty() { quote!() } else { quote!(#[allow(unused_variables)] match self { #(#tag_arms)* }) };
    let name_body = if name_arms.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#name_arms)* }) };
    let marker_body = if versions.is_empty() {
        quote!()
    } else {
        let version_arms = versions.iter().map(|(wire, v)| {
            let number = v.number;
            quote!(#wire => #number,)
        });
        let upcaster_arms = versions.iter().map(|(wire, v)| {
            let steps = &v.upcasters;
            quote!(#wire => {
                const UPCASTERS: &[#spec::Upcaster] = &[#(#steps),*];
                UPCASTERS
            })
        });
        quote! {
            fn version(name: &str) -> u32 {
                match name { #(#version_arms)* _ => #spec::FIRST_VERSION }
            }
            fn upcasters(name: &str) -> &'static [#spec::Upcaster] {
                match name { #(#upcaster_arms)* _ => &[] }
            }
        }
    };

    Ok(quote! {
        impl #impl_generics #spec::Message for #ty #ty_generics #where_clause {
            const NAMES: &'static [&'static str] = &[#(#names),*];
            const IS_ENUM: bool = #is_enum;
            fn name(&self) -> &'static str { #name_body }
            fn tag_set(&self) -> #spec::TagSet {
                #[allow(unused_mut)]
                let mut set = #spec::TagSet::default();
                #tag_body
                set
            }
        }
        impl #impl_generics #spec::#marker for #ty #ty_generics #where_clause { #marker_body }
    })
}

/// A wire type's declared version and its upcasters, oldest first.
struct EventVersion {
    number: u32,
    upcasters: Vec<syn::Expr>,
}

/// Reads `#[event(version = N, upcasters = [a, b])]`; N - 1 upcasters are
/// required, so every older version has a way to the current one.
fn event_version(attrs: &[Attribute]) -> syn::Result<Option<EventVersion>> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("event")) else {
        return Ok(None);
    };
    let mut number = None;
    let mut upcasters = Vec::new();
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("version") {
            let literal: syn::LitInt = meta.value()?.parse()?;
            let value: u32 = literal.base10_parse()?;
            if value == 0 {
                return Err(syn::Error::new_spanned(literal, "versions start at 1"));
            }
            number = Some(value);
        } else if meta.path.is_ident("upcasters") {
            let list: syn::ExprArray = meta.value()?.parse()?;
            upcasters = list.elems.into_iter().collect();
        } else {
            return Err(meta.error("expected `version = N` or `upcasters = [..]`"));
        }
        Ok(())
    })?;
    let Some(number) = number else {
        return Err(syn::Error::new_spanned(attr, "#[event(..)] needs `version = N`"));
    };
    let needed = usize::try_from(number - 1).unwrap_or(usize::MAX);
    if upcasters.len() != needed {
        return Err(syn::Error::new_spanned(
            attr,
            format!(
                "version {number} needs {needed} upcaster(s), one per older version (v1 → v2, …), in `upcasters = [..]`; found {}",
                upcasters.len()
            ),
        ));
    }
    Ok(Some(EventVersion { number, upcasters }))
}

/// Binds every field of a variant or struct to a local name and returns the
/// pattern plus one `set.add(..)` statement per `#[tag]` field.
fn bind_fields(fields: &Fields) -> syn::Result<(TokenStream2, Vec<TokenStream2>)> {
    let mut adds = Vec::new();
    let pattern = match fields {
        Fields::Named(named) => {
            let mut binds = Vec::new();
            for field in &named.named {
                let ident = field.ident.clone().ok_or_else(|| syn::Error::new_spanned(field, "unnamed field"))?;
                if let Some(key) = tag_key(&field.attrs, Some(&ident))? {
                    adds.push(quote!(set.add(#key, #ident);));
                }
                binds.push(ident);
            }
            quote!({ #(#binds),* })
        }
        Fields::Unnamed(unnamed) => {
            let mut binds = Vec::new();
            for (index, field) in unnamed.unnamed.iter().enumerate() {
                let bind = format_ident!("field_{index}");
                if let Some(key) = tag_key(&field.attrs, None)? {
                    adds.push(quote!(set.add(#key, #bind);));
                }
                binds.push(bind);
            }
            quote!(( #(#binds),* ))
        }
        Fields::Unit => quote!(),
    };
    Ok((pattern, adds))
}

/// The tag key of a field marked `#[tag]` / `#[tag("key")]`, if marked.
fn tag_key(attrs: &[Attribute], field: Option<&Ident>) -> syn::Result<Option<String>> {
    for attr in attrs {
        if !attr.path().is_ident("tag") {
            continue;
        }
        if let syn::Meta::Path(_) = attr.meta {
            let Some(field) = field else {
                return Err(syn::Error::new_spanned(attr, "a tuple field needs an explicit key: #[tag(\"key\")]"));
            };
            return Ok(Some(default_key(&field.to_string())));
        }
        let key: LitStr = attr.parse_args()?;
        if key.value().is_empty() || key.value().contains(':') {
            return Err(syn::Error::new_spanned(key, "a tag key must be non-empty and must not contain ':'"));
        }
        return Ok(Some(key.value()));
    }
    Ok(None)
}

fn default_key(field: &str) -> String {
    let field = field.strip_prefix("r#").unwrap_or(field);
    for suffix in ["_ids", "_id"] {
        if let Some(stem) = field.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem.to_string();
        }
    }
    field.to_string()
}

fn serde_rename(attrs: &[Attribute]) -> syn::Result<Option<String>> {
    let mut rename = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: LitStr = meta.value()?.parse()?;
                rename = Some(value.value());
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
                let _: TokenStream2 = _content.parse()?;
            }
            Ok(())
        })?;
    }
    Ok(rename)
}

/// On enums: the wire format splits an externally tagged value into (name, data); serde
/// attributes that change that shape would make names and data disagree.
fn reject_unsupported_serde(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let mut bad = None;
        attr.parse_nested_meta(|meta| {
            for key in ["tag", "content", "untagged", "rename_all"] {
                if meta.path.is_ident(key) {
                    bad = Some(key);
                }
            }
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
                let _: TokenStream2 = _content.parse()?;
            }
            Ok(())
        })?;
        if let Some(key) = bad {
            return Err(syn::Error::new_spanned(
                attr,
                format!(
                    "#[serde({key})] on a message changes its wire shape; rename single variants with #[serde(rename = \"..\")] instead"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{default_key, event_version, expand};
    use syn::parse_quote;

    #[test]
    fn versions_are_declared_on_event_variants_only() {
        let error = |input: syn::DeriveInput, marker: &str| match expand(&input, marker) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted"),
        };
        let on_enum = error(
            parse_quote!(
                #[event(version = 2, upcasters = [a])]
                enum E {
                    A,
                }
            ),
            "Event",
        );
        assert!(on_enum.contains("put #[event(version = ..)] on the variant"), "{on_enum}");
        let on_command = error(
            parse_quote!(
                #[event(version = 2)]
                struct C {
                    x: u8,
                }
            ),
            "Command",
        );
        assert!(on_command.contains("commands are not stored"), "{on_command}");
        let versioned = expand(
            &parse_quote!(
                enum E {
                    #[event(version = 2, upcasters = [up])]
                    A,
                    B,
                }
            ),
            "Event",
        );
        let tokens = versioned.unwrap().to_string();
        assert!(tokens.contains("fn version") && tokens.contains("\"A\" => 2u32"), "{tokens}");
        let plain = expand(
            &parse_quote!(
                enum E {
                    A,
                }
            ),
            "Event",
        )
        .unwrap()
        .to_string();
        assert!(!plain.contains("fn version"), "unversioned types keep the trait's defaults");
    }

    #[test]
    fn event_versions_need_one_upcaster_per_older_version() {
        let declared = event_version(&[parse_quote!(#[event(version = 3, upcasters = [a, |d| d])])]).unwrap().unwrap();
        assert_eq!((declared.number, declared.upcasters.len()), (3, 2));
        assert!(event_version(&[parse_quote!(#[serde(rename = "X")])]).unwrap().is_none());
        let error = |attr: syn::Attribute| match event_version(&[attr]) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(
            error(parse_quote!(#[event(version = 3, upcasters = [a])])),
            "version 3 needs 2 upcaster(s), one per older version (v1 → v2, …), in `upcasters = [..]`; found 1"
        );
        assert!(error(parse_quote!(#[event(version = 2)])).contains("needs 1 upcaster(s)"));
        assert_eq!(error(parse_quote!(#[event(version = 0)])), "versions start at 1");
        assert_eq!(error(parse_quote!(#[event(upcasters = [a])])), "#[event(..)] needs `version = N`");
        assert!(error(parse_quote!(#[event(verison = 2)])).contains("expected `version = N`"));
    }

    #[test]
    fn default_tag_keys_drop_id_suffixes() {
        assert_eq!(default_key("category_id"), "category");
        assert_eq!(default_key("product_ids"), "product");
        assert_eq!(default_key("sku"), "sku");
        assert_eq!(default_key("_id"), "_id");
    }
}
