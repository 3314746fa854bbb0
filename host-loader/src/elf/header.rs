//! The ELF file header, decoded by `object` for either class and byte order.
//!
//! [`Header::parse`] checks the identification bytes (magic, class, data encoding, version)
//! and has `object` decode the header fields of a 32- or 64-bit, little- or big-endian file
//! ([`object::read::elf::FileHeader`]); whether the file suits this host is a separate step
//! ([`Header::check_host`]), so a file for another machine is *described* correctly ("32-bit,
//! big endian, ARM") before it is refused.

use super::error::{ElfError, Malformed};
use object::Endianness;
use object::elf::{ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ELFMAG, EV_CURRENT};
use object::read::ReadRef;
use object::read::elf::FileHeader;

pub use object::Endianness as Endian;

/// Index of the class byte in `e_ident`.
const EI_CLASS: usize = 4;
/// Index of the data encoding byte in `e_ident`.
const EI_DATA: usize = 5;
/// Index of the version byte in `e_ident`.
const EI_VERSION: usize = 6;
pub use object::elf::{EM_AARCH64, EM_X86_64, ET_DYN};

/// The machine this host runs, and how to name it.
#[cfg(target_arch = "x86_64")]
pub const HOST_MACHINE: (u16, &str) = (EM_X86_64, "x86_64 (64-bit, little endian)");
/// The machine this host runs, and how to name it.
#[cfg(target_arch = "aarch64")]
pub const HOST_MACHINE: (u16, &str) = (EM_AARCH64, "aarch64 (64-bit, little endian)");

/// ELF class: the width of addresses and offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// The decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 32 or 64-bit.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_type`: relocatable, executable, shared object, core.
    pub kind: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_phoff`: program header table offset.
    pub phoff: u64,
    /// `e_shoff`: section header table offset.
    pub shoff: u64,
    /// `e_phentsize`.
    pub phentsize: u16,
    /// `e_phnum` (`PN_XNUM` means: in section 0's `sh_info`).
    pub phnum: u16,
    /// `e_shentsize`.
    pub shentsize: u16,
    /// `e_shnum` (0 with a section table means: in section 0's `sh_size`).
    pub shnum: u16,
    /// `e_shstrndx` (`SHN_XINDEX` means: in section 0's `sh_link`).
    pub shstrndx: u16,
}

/// `object`'s header of a file whose identification has been checked, for class `Elf`.
pub(crate) fn raw<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<&Elf, ElfError> {
    Elf::parse(data).map_err(|_| {
        let (class, size) = if Elf::is_type_64_sized() {
            ("64-bit", 64)
        } else {
            ("32-bit", 52)
        };
        ElfError::malformed(
            Malformed::Truncated,
            format!(
                "ELF header: the file has {} bytes, a {class} header needs {size}",
                data.len()
            ),
        )
    })
}

fn decode<Elf: FileHeader<Endian = Endianness>>(elf: &Elf, class: Class, endian: Endian) -> Header {
    Header {
        class,
        endian,
        kind: elf.e_type(endian),
        machine: elf.e_machine(endian),
        phoff: elf.e_phoff(endian).into(),
        shoff: elf.e_shoff(endian).into(),
        phentsize: elf.e_phentsize(endian),
        phnum: elf.e_phnum(endian),
        shentsize: elf.e_shentsize(endian),
        shnum: elf.e_shnum(endian),
        shstrndx: elf.e_shstrndx(endian),
    }
}

impl Header {
    /// Decodes the header of a 32- or 64-bit ELF file of either byte order.
    pub fn parse(data: &[u8]) -> Result<Header, ElfError> {
        if data.get(..4) != Some(ELFMAG.as_slice()) {
            let detail = match data.len() {
                0 => "the file is empty".to_string(),
                1..=3 => format!("only {} bytes", data.len()),
                _ => "no ELF magic at the start".to_string(),
            };
            return Err(ElfError::NotElf { detail });
        }
        // The 16 identification bytes (`EI_NIDENT`): magic, class, data encoding, version.
        let ident = data.read_bytes_at(0, 16).map_err(|()| {
            ElfError::malformed(
                Malformed::Truncated,
                format!(
                    "ELF identification: the file has {} bytes, the identification needs 16",
                    data.len()
                ),
            )
        })?;
        let byte = |index: usize| ident.get(index).copied().unwrap_or(0);
        let class = match byte(EI_CLASS) {
            ELFCLASS32 => Class::Elf32,
            ELFCLASS64 => Class::Elf64,
            other => {
                return Err(ElfError::malformed(
                    Malformed::BadIdent,
                    format!("ELF class byte is {other} (1 is 32-bit, 2 is 64-bit)"),
                ));
            }
        };
        let endian = match byte(EI_DATA) {
            ELFDATA2LSB => Endian::Little,
            ELFDATA2MSB => Endian::Big,
            other => {
                return Err(ElfError::malformed(
                    Malformed::BadIdent,
                    format!(
                        "ELF data encoding byte is {other} (1 is little endian, 2 is big endian)"
                    ),
                ));
            }
        };
        let version = byte(EI_VERSION);
        if version != EV_CURRENT {
            return Err(ElfError::malformed(
                Malformed::BadIdent,
                format!(
                    "ELF identification version byte is {version} (1, EV_CURRENT, is the only version)"
                ),
            ));
        }
        Ok(match class {
            Class::Elf32 => decode(
                raw::<object::elf::FileHeader32<Endianness>>(data)?,
                class,
                endian,
            ),
            Class::Elf64 => decode(
                raw::<object::elf::FileHeader64<Endianness>>(data)?,
                class,
                endian,
            ),
        })
    }

    /// The size of an address or offset in this class.
    pub fn word_size(&self) -> u64 {
        match self.class {
            Class::Elf32 => 4,
            Class::Elf64 => 8,
        }
    }

    /// Refuses a file this host cannot load: another class, byte order or machine, or not a
    /// shared object.
    pub fn check_host(&self) -> Result<(), ElfError> {
        if self.class != Class::Elf64
            || self.endian != Endian::Little
            || self.machine != HOST_MACHINE.0
        {
            return Err(ElfError::WrongTarget {
                found: self.describe(),
                expected: HOST_MACHINE.1,
            });
        }
        if self.kind != ET_DYN {
            let found = match self.kind {
                0 => "untyped".to_string(),
                1 => "relocatable object".to_string(),
                2 => "executable".to_string(),
                4 => "core dump".to_string(),
                other => format!("type {other:#x}"),
            };
            return Err(ElfError::NotSharedObject { found });
        }
        Ok(())
    }

    /// E.g. `32-bit, big endian, ARM (machine 40)`.
    pub fn describe(&self) -> String {
        let endian = match self.endian {
            Endian::Little => "little endian",
            Endian::Big => "big endian",
        };
        format!(
            "{}, {endian}, {} (machine {})",
            class_name(self.class),
            machine_name(self.machine),
            self.machine
        )
    }
}

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Elf32 => "32-bit",
        Class::Elf64 => "64-bit",
    }
}

/// A readable name for the common `e_machine` values.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        0 => "no machine",
        2 => "SPARC",
        3 => "x86",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        22 => "S/390",
        40 => "ARM",
        43 => "SPARC V9",
        EM_X86_64 => "x86_64",
        EM_AARCH64 => "aarch64",
        243 => "RISC-V",
        258 => "LoongArch",
        _ => "unknown machine",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_classes_and_byte_orders_decode_then_only_the_host_passes() {
        // A 32-bit big-endian ARM shared object header.
        let mut h32 = vec![0u8; 52];
        h32[..7].copy_from_slice(b"\x7fELF\x01\x02\x01");
        h32[16..18].copy_from_slice(&ET_DYN.to_be_bytes());
        h32[18..20].copy_from_slice(&40u16.to_be_bytes());
        h32[32..36].copy_from_slice(&0x1234u32.to_be_bytes()); // e_shoff
        h32[48..50].copy_from_slice(&7u16.to_be_bytes()); // e_shnum
        let header = Header::parse(&h32).unwrap();
        assert_eq!((header.class, header.endian), (Class::Elf32, Endian::Big));
        assert_eq!(
            (header.machine, header.shoff, header.shnum),
            (40, 0x1234, 7)
        );
        let err = header.check_host().unwrap_err();
        assert_eq!(err.code(), "ELF_WRONG_TARGET");
        assert!(
            err.to_string()
                .contains("32-bit, big endian, ARM (machine 40)"),
            "{err}"
        );

        let mut h64 = vec![0u8; 64];
        h64[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        h64[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        h64[18..20].copy_from_slice(&HOST_MACHINE.0.to_le_bytes());
        h64[40..48].copy_from_slice(&0x9999u64.to_le_bytes());
        h64[62..64].copy_from_slice(&0xffffu16.to_le_bytes());
        let header = Header::parse(&h64).unwrap();
        assert_eq!((header.shoff, header.shstrndx), (0x9999, 0xffff));
        header.check_host().unwrap();
        h64[5] = 3;
        assert_eq!(Header::parse(&h64).unwrap_err().code(), "ELF_BAD_IDENT");
        assert_eq!(
            Header::parse(&h64[..5]).unwrap_err().code(),
            "ELF_TRUNCATED"
        );
    }
}
