//! Code generation. Everything generated refers to the SDK through `::plugin_sdk::__private`,
//! a hidden module whose contents may change with any SDK release.
//!
//! Records are emitted as exported `#[no_mangle]` statics in the `.plugin_manifest` section:
//! exported symbols are roots for the linker's garbage collection, so they survive
//! `--gc-sections`, LTO and `codegen-units = 1` (a plain `#[used]` static does not, in a
//! dependency crate), and two definitions of one symbol fail the build instead of silently
//! picking one.

use crate::valid::{Input, Output, ValidHook, ValidPlugin};
use plugin_manifest::record::{RecordKind, encode};
use plugin_manifest::signature::WireKind;
use plugin_manifest::{MANIFEST_SECTION, hook_info_symbol, hook_symbol};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, LitByteStr, LitStr};

fn record_static(name: &syn::Ident, kind: RecordKind, payload: &[u8]) -> TokenStream {
    let bytes = encode(kind, payload);
    let len = bytes.len();
    let literal = LitByteStr::new(&bytes, Span::call_site());
    let section = LitStr::new(MANIFEST_SECTION, Span::call_site());
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        #[unsafe(link_section = #section)]
        #[used]
        pub static #name: [u8; #len] = *#literal;
    }
}

pub fn plugin(valid: &ValidPlugin) -> TokenStream {
    let json = serde_json::to_vec(&valid.info).expect("PluginInfo serializes");
    let manifest = record_static(
        &format_ident!("{}", plugin_manifest::MANIFEST_SYMBOL),
        RecordKind::Manifest,
        &json,
    );
    let abi_name = format_ident!("{}", plugin_manifest::ABI_SYMBOL);
    let section = LitStr::new(MANIFEST_SECTION, Span::call_site());
    quote! {
        #manifest

        // A second `plugin!` in the library clashes here, at name resolution (the duplicate
        // exported statics would only clash when the object is linked).
        #[doc(hidden)]
        #[macro_export]
        macro_rules! duplicate_plugin_declaration_only_one_plugin_macro_per_library {
            () => {};
        }

        // The ABI facts come from the SDK crate (rustc version, target, panic strategy), so the
        // record is assembled in a const context from the SDK's constants.
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        #[unsafe(link_section = #section)]
        #[used]
        pub static #abi_name: [u8; ::plugin_sdk::__private::ABI_RECORD_LEN] = ::plugin_sdk::__private::ABI_RECORD;

        // Checked by the worker after loading, before any entry point is called.
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static PLUGIN_ABI_ROOT: ::plugin_sdk::abi::AbiRoot = ::plugin_sdk::abi::ABI_ROOT;

        // Called once by the worker after loading: the broker entry point for `plugin_sdk::host`.
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn PLUGIN_HOST_INIT(host: &'static ::plugin_sdk::abi::HostVtable) {
            ::plugin_sdk::__private::install_host(host)
        }
    }
}

pub fn hook(valid: &ValidHook, item: &ItemFn) -> TokenStream {
    let function = &item.sig.ident;
    let shim = format_ident!("{}", hook_symbol(&valid.hook));
    let info_name = format_ident!("{}", hook_info_symbol(&valid.hook));
    let json = serde_json::to_vec(&valid.entry).expect("EntryPoint serializes");
    let info = record_static(&info_name, RecordKind::Entry, &json);
    let hook_name = &valid.hook;

    let call = match &valid.input {
        None => quote!(#function()),
        Some(input) => {
            let decode = decode_input(input, hook_name);
            quote!({
                let __plugin_input = #decode;
                #function(__plugin_input)
            })
        }
    };
    let encode_value = encode_output(&valid.output);
    let body = if valid.output.is_result {
        quote! {
            match #call {
                ::core::result::Result::Ok(__plugin_value) => #encode_value,
                ::core::result::Result::Err(__plugin_error) => {
                    ::core::result::Result::Err(::plugin_sdk::__private::error_message(&__plugin_error))
                }
            }
        }
    } else {
        quote!({
            let __plugin_value = #call;
            #encode_value
        })
    };

    // A second entry point for the same hook anywhere in the crate would also clash as a
    // duplicate exported symbol, but only when the object is linked (`cargo check` passes).
    // Exported macros all live at the crate root, so this name clashes at name resolution,
    // in every build, and the error names the hook.
    let duplicate_guard = format_ident!("duplicate_plugin_entry_point_for_hook_{}", hook_name);

    quote! {
        #item

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #duplicate_guard {
            () => {};
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #[unsafe(no_mangle)]
        pub extern "C" fn #shim(
            input: ::plugin_sdk::__private::RSlice<'_, u8>,
        ) -> ::plugin_sdk::__private::CallOutcome {
            ::plugin_sdk::__private::call_entry(input, |__plugin_bytes: &[u8]| #body)
        }

        #info
    }
}

fn decode_input(input: &Input, hook: &str) -> TokenStream {
    let ty = &input.ty;
    match (input.kind, input.borrowed) {
        // Spanned at the user's type, so a missing `Deserialize` impl is reported there.
        (WireKind::Json, _) => quote_spanned! {ty.span()=>
            ::plugin_sdk::__private::decode_json::<#ty>(__plugin_bytes, #hook)?
        },
        (WireKind::Text, true) => {
            quote!(::plugin_sdk::__private::decode_text(__plugin_bytes, #hook)?)
        }
        (WireKind::Text, false) => {
            quote!(::std::string::String::from(::plugin_sdk::__private::decode_text(__plugin_bytes, #hook)?))
        }
        (WireKind::Bytes, true) => quote!(__plugin_bytes),
        (WireKind::Bytes, false) => quote!(__plugin_bytes.to_vec()),
        (WireKind::None, _) => quote!(()),
    }
}

fn encode_output(output: &Output) -> TokenStream {
    match (output.kind, &output.ty) {
        (WireKind::Json, Some(ty)) => quote_spanned! {ty.span()=>
            ::plugin_sdk::__private::encode_json::<#ty>(&__plugin_value)
        },
        (WireKind::Text, _) => quote!(::core::result::Result::Ok(
            ::std::string::String::into_bytes(__plugin_value)
        )),
        (WireKind::Bytes, _) => quote!(::core::result::Result::Ok(__plugin_value)),
        _ => quote!({
            let () = __plugin_value;
            ::core::result::Result::Ok(::std::vec::Vec::new())
        }),
    }
}
