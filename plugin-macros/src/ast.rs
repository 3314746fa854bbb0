//! Syntax of the macro inputs, parsed into our own types with spans kept for error messages.
//! Nothing here judges the values; `valid` does.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitInt, LitStr, Token, braced, bracketed};

/// One `key: value` field of `plugin!`.
pub struct Field {
    pub key: Ident,
    pub value: Value,
}

/// The values a `plugin!` field can take.
pub enum Value {
    Str(LitStr),
    Ident(Ident),
    List(Vec<LitStr>, Span),
    Map(Vec<(Ident, LitInt)>, Span),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Str(lit) => lit.span(),
            Value::Ident(ident) => ident.span(),
            Value::List(_, span) | Value::Map(_, span) => *span,
        }
    }
}

/// The whole input of `plugin!`.
pub struct PluginDecl {
    pub fields: Vec<Field>,
}

impl Parse for PluginDecl {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let fields = Punctuated::<Field, Token![,]>::parse_terminated(input)?;
        Ok(PluginDecl {
            fields: fields.into_iter().collect(),
        })
    }
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let value = if input.peek(LitStr) {
            Value::Str(input.parse()?)
        } else if input.peek(Ident) {
            Value::Ident(input.parse()?)
        } else if input.peek(syn::token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let items = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
            Value::List(items.into_iter().collect(), bracket.span.join())
        } else if input.peek(syn::token::Brace) {
            let content;
            let brace = braced!(content in input);
            let mut entries = Vec::new();
            while !content.is_empty() {
                let name: Ident = content.parse()?;
                content.parse::<Token![:]>()?;
                let value: LitInt = content.parse()?;
                entries.push((name, value));
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Value::Map(entries, brace.span.join())
        } else {
            return Err(input.error(
                "expected a value: a string (\"...\"), a level name, a list [\"...\"] or limits { name: number }",
            ));
        };
        Ok(Field { key, value })
    }
}

/// Arguments of `#[hook(...)]`: nothing, or `name = "hook_name"`.
pub struct HookArgs {
    pub name: Option<LitStr>,
    /// Set by `#[init]` / `#[shutdown]`, which fix the name.
    pub lifecycle: Option<Lifecycle>,
}

/// The lifecycle entry points.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Init,
    Shutdown,
}

impl Parse for HookArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(HookArgs {
                name: None,
                lifecycle: None,
            });
        }
        let key: Ident = input.parse()?;
        if key != "name" {
            return Err(syn::Error::new(
                key.span(),
                "unknown hook argument: expected `name = \"hook_name\"`",
            ));
        }
        input.parse::<Token![=]>()?;
        let name: LitStr = input.parse()?;
        input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens: expected only `name = \"hook_name\"`"));
        }
        Ok(HookArgs {
            name: Some(name),
            lifecycle: None,
        })
    }
}
