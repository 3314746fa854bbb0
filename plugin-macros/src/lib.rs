//! Macros for plugin authors; use them through `plugin-sdk`, which re-exports them.
//!
//! - [`plugin!`] declares the plugin's identity, permissions, level and limits, and embeds them
//!   in the `.plugin_manifest` ELF section with the SDK's ABI facts.
//! - [`#[hook]`](macro@hook) turns an ordinary function into an exported entry point: an
//!   `extern "C"` shim that decodes the input, catches panics, encodes the output, plus a record
//!   describing the entry point and its signature hash.
//!
//! Each macro parses its input into our own types (`ast`), validates them (`valid`, all errors
//! at once, each on the offending tokens) and only then expands (`expand`).
#![forbid(unsafe_code)]

mod ast;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Declares the plugin and embeds its manifest. Invoke it once, at the crate root:
///
/// ```ignore
/// plugin_sdk::plugin! {
///     name: "word-stats",
///     description: "Counts words, sentences and frequent words of a story",
///     author: "Story Team",            // default: the package's `authors`
///     version: "0.1.0",                // default: the package's version
///     level: standard,                 // minimal | standard | strict | isolated
///     permissions: ["fs.read:data/words.txt"],
///     limits: { wall_ms: 1000, memory_mb: 64 },
/// }
/// ```
///
/// A second invocation in the same library fails to build (the exported `PLUGIN_MANIFEST`
/// symbol would be defined twice).
#[proc_macro]
pub fn plugin(input: TokenStream) -> TokenStream {
    let decl = syn::parse_macro_input!(input as ast::PluginDecl);
    match valid::plugin(decl) {
        Ok(valid) => expand::plugin(&valid).into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Exports a function as the entry point of a hook (the function's name, or `name = "..."`).
///
/// ```ignore
/// #[plugin_sdk::hook]
/// fn analyze(story: plugin_sdk::Story) -> Result<Stats, String> { ... }
/// ```
///
/// The function takes at most one parameter: `&str`, `String`, `&[u8]`, `Vec<u8>`, or a type
/// implementing `serde::Deserialize` (sent as JSON). It returns `()`, `String`, `Vec<u8>`, a
/// type implementing `serde::Serialize` (sent as JSON), or a `Result` of one of these with an
/// error implementing `Display` (reported as `plugin_error`). A panic inside it is caught and
/// reported as `panic` with its message.
#[proc_macro_attribute]
pub fn hook(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn = syn::parse_macro_input!(item as syn::ItemFn);
    let args = syn::parse_macro_input!(args as ast::HookArgs);
    match valid::hook(args, &item_fn) {
        Ok(valid) => expand::hook(&valid, &item_fn).into(),
        Err(error) => {
            // Keep the function itself so the author sees this one error, not a cascade of
            // "cannot find function" errors at its call sites.
            let mut out = error.to_compile_error();
            out.extend(quote::quote!(#item_fn));
            out.into()
        }
    }
}

/// Marks the plugin's `init` entry point: run once when a worker starts, before any call, with
/// the host's configuration for the plugin.
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// struct Config { stop_words: Vec<String> }
///
/// #[plugin_sdk::init]
/// fn init(config: Config) -> Result<(), String> { ... }
/// ```
///
/// It takes nothing, or one parameter of a type implementing `serde::Deserialize` (the
/// configuration, sent as JSON), and returns `()` or `Result<(), E>` with `E: Display`. An error
/// (or a panic) stops the worker from starting, and the reason is reported.
#[proc_macro_attribute]
pub fn init(args: TokenStream, item: TokenStream) -> TokenStream {
    lifecycle(ast::Lifecycle::Init, args, item)
}

/// Marks the plugin's `shutdown` entry point: run when a healthy worker is retired (idle, or
/// the host is done with it), under a short deadline. It takes nothing and returns `()` or
/// `Result<(), E>`. It is not run after a call that failed: that worker is killed.
#[proc_macro_attribute]
pub fn shutdown(args: TokenStream, item: TokenStream) -> TokenStream {
    lifecycle(ast::Lifecycle::Shutdown, args, item)
}

fn lifecycle(kind: ast::Lifecycle, args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn = syn::parse_macro_input!(item as syn::ItemFn);
    let name = match kind {
        ast::Lifecycle::Init => plugin_manifest::INIT_HOOK,
        ast::Lifecycle::Shutdown => plugin_manifest::SHUTDOWN_HOOK,
    };
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        let mut out = syn::Error::new_spanned(
            args,
            format!("`#[{name}]` takes no arguments: the entry point is always named `{name}`"),
        )
        .to_compile_error();
        out.extend(quote::quote!(#item_fn));
        return out.into();
    }
    let args = ast::HookArgs {
        name: Some(syn::LitStr::new(name, item_fn.sig.ident.span())),
        lifecycle: Some(kind),
    };
    match valid::hook(args, &item_fn) {
        Ok(valid) => expand::hook(&valid, &item_fn).into(),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(quote::quote!(#item_fn));
            out.into()
        }
    }
}
