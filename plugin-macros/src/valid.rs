//! Semantic checks of the macro inputs. Every problem becomes a `syn::Error` on the offending
//! tokens, and all problems of one invocation are combined so the author sees them at once.

use crate::ast::{Field, HookArgs, PluginDecl, Value};
use plugin_manifest::level::LimitRequest;
use plugin_manifest::model::{validate_hook, validate_name, validate_version};
use plugin_manifest::signature::{WireKind, WireType};
use plugin_manifest::{EntryPoint, Grant, PluginInfo, SDK_ABI_VERSION, SecurityLevel};
use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// Collects errors so that all of them are reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        let error = syn::Error::new(span, message);
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

const PLUGIN_KEYS: &str = "name, version, description, author, level, permissions, limits";

/// A validated `plugin!` declaration.
pub struct ValidPlugin {
    pub info: PluginInfo,
}

pub fn plugin(decl: PluginDecl) -> syn::Result<ValidPlugin> {
    let mut errors = Errors::default();
    let mut seen: Vec<String> = Vec::new();
    let mut name = None;
    let mut version = None;
    let mut description = None;
    let mut author = None;
    let mut level = SecurityLevel::default();
    let mut permissions = Vec::new();
    let mut limits = LimitRequest::default();
    let mut limits_span = Span::call_site();

    for Field { key, value } in decl.fields {
        let key_name = key.to_string();
        if seen.contains(&key_name) {
            errors.push(key.span(), format!("`{key_name}` is given twice"));
            continue;
        }
        seen.push(key_name.clone());
        match (key_name.as_str(), value) {
            ("name", Value::Str(lit)) => match validate_name(&lit.value()) {
                Ok(()) => name = Some(lit.value()),
                Err(e) => errors.push(lit.span(), e),
            },
            ("version", Value::Str(lit)) => match validate_version(&lit.value()) {
                Ok(()) => version = Some(lit.value()),
                Err(e) => errors.push(lit.span(), format!("bad version: {e}")),
            },
            ("description", Value::Str(lit)) => description = Some(lit.value()),
            ("author", Value::Str(lit)) => author = Some(lit.value()),
            ("level", Value::Ident(ident)) => match ident.to_string().parse() {
                Ok(parsed) => level = parsed,
                Err(e) => errors.push(ident.span(), e),
            },
            ("level", Value::Str(lit)) => match lit.value().parse() {
                Ok(parsed) => level = parsed,
                Err(e) => errors.push(lit.span(), e),
            },
            ("permissions", Value::List(items, _)) => {
                for item in items {
                    match Grant::parse(&item.value()) {
                        Ok(grant) if permissions.contains(&grant) => {
                            errors.push(item.span(), format!("permission `{grant}` is listed twice"))
                        }
                        Ok(grant) => permissions.push(grant),
                        Err(e) => errors.push(item.span(), e),
                    }
                }
            }
            ("limits", Value::Map(entries, span)) => {
                limits_span = span;
                for (limit, value) in entries {
                    let parsed = match value.base10_parse::<u64>() {
                        Ok(parsed) => parsed,
                        Err(e) => {
                            errors.push(value.span(), e);
                            continue;
                        }
                    };
                    if !limits.set(&limit.to_string(), parsed) {
                        errors.push(
                            limit.span(),
                            format!("unknown limit `{limit}`: expected one of {}", LimitRequest::FIELDS.join(", ")),
                        );
                    }
                }
            }
            ("name" | "version" | "description" | "author", value) => {
                errors.push(value.span(), format!("`{key_name}` takes a string literal"))
            }
            ("level", value) => {
                errors.push(value.span(), "`level` takes one of minimal, standard, strict, isolated")
            }
            ("permissions", value) => errors.push(
                value.span(),
                "`permissions` takes a list of strings, e.g. [\"fs.read:data/words.txt\", \"notify\"]",
            ),
            ("limits", value) => {
                errors.push(value.span(), "`limits` takes a block such as { wall_ms: 1000, memory_mb: 64 }")
            }
            (_, _) => errors.push(key.span(), format!("unknown field `{key_name}`: expected one of {PLUGIN_KEYS}")),
        }
    }
    for excess in level.max_limits().excesses(&limits) {
        errors.push(
            limits_span,
            format!(
                "requested limit {excess} at level `{level}`: lower it or choose a looser level"
            ),
        );
    }
    for zero in limits.unrunnable() {
        errors.push(
            limits_span,
            format!("requested limit {zero}: no call could run within it; leave it out to get the level's value"),
        );
    }
    if name.is_none() && !seen.iter().any(|k| k == "name") {
        errors.push(Span::call_site(), "missing `name: \"kebab-case-name\"`");
    }
    if description.is_none() && !seen.iter().any(|k| k == "description") {
        errors.push(
            Span::call_site(),
            "missing `description: \"what the plugin does\"`",
        );
    }
    // Defaults come from the package being compiled: cargo sets these for every rustc
    // invocation, including the proc-macro expansion.
    let version = match version {
        Some(version) => version,
        None => std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "0.0.0".into()),
    };
    let author = author.unwrap_or_else(|| std::env::var("CARGO_PKG_AUTHORS").unwrap_or_default());
    let info = PluginInfo {
        name: name.unwrap_or_default(),
        version,
        description: description.unwrap_or_default(),
        author,
        security_level: level,
        permissions,
        limits,
    };
    errors.finish(ValidPlugin { info })
}

/// How the shim turns input bytes into the function's argument.
pub struct Input {
    pub kind: WireKind,
    /// `&str` / `&[u8]` rather than `String` / `Vec<u8>`.
    pub borrowed: bool,
    pub ty: Type,
}

/// How the shim turns the function's return value into output bytes.
pub struct Output {
    pub kind: WireKind,
    pub is_result: bool,
    /// The success type (`None` for `()`).
    pub ty: Option<Type>,
}

/// A validated `#[hook]` function.
pub struct ValidHook {
    pub hook: String,
    pub input: Option<Input>,
    pub output: Output,
    pub entry: EntryPoint,
}

const INPUT_TYPES: &str = "an entry point takes nothing or one parameter of type `&str`, `String`, `&[u8]`, `Vec<u8>`, or a named type implementing `serde::Deserialize` (passed as JSON)";
const OUTPUT_TYPES: &str = "an entry point returns `()`, `String`, `Vec<u8>`, a named type implementing `serde::Serialize` (passed as JSON), or `Result<T, E>` of one of these with `E: Display`";

pub fn hook(args: HookArgs, item: &ItemFn) -> syn::Result<ValidHook> {
    let mut errors = Errors::default();
    let sig = &item.sig;
    let (hook, hook_span) = match &args.name {
        Some(lit) => (lit.value(), lit.span()),
        None => (sig.ident.to_string(), sig.ident.span()),
    };
    if let Err(e) = validate_hook(&hook) {
        errors.push(hook_span, e);
    }
    if plugin_manifest::is_lifecycle_hook(&hook) && args.lifecycle.is_none() {
        errors.push(
            hook_span,
            format!(
                "`{hook}` is a lifecycle entry point: mark the function `#[plugin_sdk::{hook}]` instead of `#[hook]`"
            ),
        );
    }
    if let Some(token) = &sig.asyncness {
        errors.push(
            token.span(),
            "an entry point cannot be `async`: the host calls it synchronously",
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.push(
            token.span(),
            "an entry point cannot be `unsafe fn`: the host cannot uphold unstated contracts",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            abi.span(),
            "remove the `extern` ABI: the macro generates the `extern \"C\"` shim itself",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            sig.generics.span(),
            "an entry point cannot be generic: the host needs one concrete signature",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic.span(), "an entry point cannot be variadic");
    }

    let mut input = None;
    for (index, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(receiver) => errors.push(
                receiver.span(),
                "an entry point is a free function, not a method: remove `self`",
            ),
            FnArg::Typed(typed) if index > 0 => {
                errors.push(typed.span(), format!("too many parameters: {INPUT_TYPES}"))
            }
            FnArg::Typed(typed) => match classify_input(&typed.ty) {
                Ok(parsed) => input = Some(parsed),
                Err(e) => errors.push(typed.ty.span(), e),
            },
        }
    }
    let output = match &sig.output {
        ReturnType::Default => Output {
            kind: WireKind::None,
            is_result: false,
            ty: None,
        },
        ReturnType::Type(_, ty) => match classify_output(ty) {
            Ok(output) => output,
            Err(e) => {
                errors.push(ty.span(), e);
                Output {
                    kind: WireKind::None,
                    is_result: false,
                    ty: None,
                }
            }
        },
    };
    let input_wire = match &input {
        Some(Input {
            kind: WireKind::Json,
            ty,
            ..
        }) => WireType::json(&type_name(ty)),
        Some(Input { kind, .. }) => WireType::plain(*kind),
        None => WireType::plain(WireKind::None),
    };
    let output_wire = match &output {
        Output {
            kind: WireKind::Json,
            ty: Some(ty),
            ..
        } => WireType::json(&type_name(ty)),
        Output { kind, .. } => WireType::plain(*kind),
    };
    if let Some(lifecycle) = args.lifecycle {
        let input_ok = match (&input, lifecycle) {
            (None, _) => true,
            (Some(Input { kind, .. }), crate::ast::Lifecycle::Init) => *kind == WireKind::Json,
            (Some(_), crate::ast::Lifecycle::Shutdown) => false,
        };
        if !input_ok {
            let span = sig.inputs.span();
            match lifecycle {
                crate::ast::Lifecycle::Init => errors.push(
                    span,
                    "`init` takes nothing or its configuration as one parameter of a named type implementing `serde::Deserialize` (sent as JSON)",
                ),
                crate::ast::Lifecycle::Shutdown => {
                    errors.push(span, "`shutdown` takes no parameters")
                }
            }
        }
        if output.kind != WireKind::None {
            let span = match &sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => sig.ident.span(),
            };
            errors.push(
                span,
                format!("`{hook}` returns `()` or `Result<(), E>` with `E: Display` (an error is reported as the reason it failed)"),
            );
        }
    }
    let entry = EntryPoint::new(&hook, input_wire, output_wire, SDK_ABI_VERSION);
    errors.finish(ValidHook {
        hook,
        input,
        output,
        entry,
    })
}

/// The name of a named type as recorded in the manifest: its last path segment with generic
/// arguments, without whitespace (`plugin_sdk::Story` -> `Story`).
fn type_name(ty: &Type) -> String {
    let tokens = match ty {
        Type::Path(path) => match path.path.segments.last() {
            Some(segment) => segment.to_token_stream(),
            None => ty.to_token_stream(),
        },
        _ => ty.to_token_stream(),
    };
    tokens
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

fn single_generic(segment: &syn::PathSegment) -> Option<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first() {
            Some(GenericArgument::Type(ty)) => Some(ty),
            _ => None,
        },
        _ => None,
    }
}

fn is_u8(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "u8" && s.arguments.is_none())
}

fn is_vec_u8(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Vec" && single_generic(s).is_some_and(is_u8))
}

fn is_string(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "String" && s.arguments.is_none())
}

/// A type as written, without the spaces token printing adds (`&mut Vec<u8>`, not
/// `& mut Vec < u8 >`).
fn compact(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let previous = out.chars().last();
            let next = chars.peek().copied();
            let glued = matches!(previous, Some('&' | '*' | '<' | ':'))
                || matches!(next, Some('<' | '>' | ',' | ':' | ')'));
            if !glued {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn classify_input(ty: &Type) -> Result<Input, String> {
    let unsupported = |what: &str| {
        format!(
            "unsupported parameter type `{}` ({what}): {INPUT_TYPES}",
            compact(ty)
        )
    };
    let (kind, borrowed) = match ty {
        Type::Reference(reference) => {
            if reference.mutability.is_some() {
                return Err(unsupported("a mutable reference"));
            }
            match &*reference.elem {
                Type::Path(p) if p.path.is_ident("str") => (WireKind::Text, true),
                Type::Slice(slice) if is_u8(&slice.elem) => (WireKind::Bytes, true),
                _ => return Err(unsupported("only `&str` and `&[u8]` may be borrowed")),
            }
        }
        Type::Path(_) if is_string(ty) => (WireKind::Text, false),
        Type::Path(_) if is_vec_u8(ty) => (WireKind::Bytes, false),
        Type::Path(path) => {
            check_named(path, ty).map_err(|what| unsupported(&what))?;
            (WireKind::Json, false)
        }
        Type::Paren(paren) => return classify_input(&paren.elem),
        _ => return Err(unsupported(describe(ty))),
    };
    Ok(Input {
        kind,
        borrowed,
        ty: ty.clone(),
    })
}

fn classify_output(ty: &Type) -> Result<Output, String> {
    if let Some(segment) = last_segment(ty)
        && segment.ident == "Result"
    {
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            return Err(format!(
                "`Result` needs its type arguments, e.g. `Result<Stats, String>`: {OUTPUT_TYPES}"
            ));
        };
        let Some(GenericArgument::Type(ok)) = args.args.first() else {
            return Err(format!("`Result` needs a success type: {OUTPUT_TYPES}"));
        };
        let inner = classify_output(ok)?;
        if inner.is_result {
            return Err(format!("nested `Result` is not supported: {OUTPUT_TYPES}"));
        }
        return Ok(Output {
            is_result: true,
            ..inner
        });
    }
    let unsupported = |what: &str| {
        format!(
            "unsupported return type `{}` ({what}): {OUTPUT_TYPES}",
            compact(ty)
        )
    };
    match ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => Ok(Output {
            kind: WireKind::None,
            is_result: false,
            ty: None,
        }),
        Type::Path(_) if is_string(ty) => Ok(Output {
            kind: WireKind::Text,
            is_result: false,
            ty: Some(ty.clone()),
        }),
        Type::Path(_) if is_vec_u8(ty) => Ok(Output {
            kind: WireKind::Bytes,
            is_result: false,
            ty: Some(ty.clone()),
        }),
        Type::Path(path) => {
            check_named(path, ty).map_err(|what| unsupported(&what))?;
            Ok(Output {
                kind: WireKind::Json,
                is_result: false,
                ty: Some(ty.clone()),
            })
        }
        Type::Paren(paren) => classify_output(&paren.elem),
        Type::Reference(_) => Err(unsupported(
            "a reference cannot outlive the call; return an owned value",
        )),
        _ => Err(unsupported(describe(ty))),
    }
}

/// A named JSON type must be concrete and owned.
fn check_named(path: &syn::TypePath, ty: &Type) -> Result<(), String> {
    if path.qself.is_some() {
        return Err("a qualified path".into());
    }
    if path.path.is_ident("Self") {
        return Err("`Self`".into());
    }
    let text = ty.to_token_stream().to_string();
    if text.contains('&') || text.contains('\'') {
        return Err("borrowed data inside a named type".into());
    }
    const PRIMITIVES: &[&str] = &[
        "str", "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "usize", "isize", "f32",
        "f64", "bool", "char",
    ];
    if PRIMITIVES.iter().any(|p| path.path.is_ident(p)) {
        return Err("a bare primitive; wrap it in a struct or use `String`".into());
    }
    Ok(())
}

fn describe(ty: &Type) -> &'static str {
    match ty {
        Type::Ptr(_) => "a raw pointer",
        Type::Tuple(_) => "a tuple",
        Type::Array(_) => "an array",
        Type::Slice(_) => "an unsized slice",
        Type::ImplTrait(_) => "`impl Trait`",
        Type::TraitObject(_) => "a trait object",
        Type::BareFn(_) => "a function pointer",
        Type::Never(_) => "the never type",
        Type::Infer(_) => "an inferred type",
        _ => "not a plain named type",
    }
}
