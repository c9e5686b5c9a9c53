//! `[muc]`: the multi-user chat service (XEP-0045), the same for every
//! host's MUC domain.

use toml::Spanned;

use super::toml_reader::TableReader;

/// Who may create chat rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCreation {
    /// Any user who can reach the service.
    Anyone,
    /// Users with an account on one of this server's hosts.
    Local,
    /// Server administrators (`admins`) only.
    Admins,
}

impl RoomCreation {
    const ALL: [(&'static str, RoomCreation); 3] = [
        ("anyone", RoomCreation::Anyone),
        ("local", RoomCreation::Local),
        ("admins", RoomCreation::Admins),
    ];
}

/// The multi-user chat service, the same for every host's MUC domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MucConfig {
    pub room_creation: RoomCreation,
    /// Rooms that may exist at once (stored and temporary together).
    pub max_rooms: usize,
    /// Rooms (temporary and stored) one user may own when creating
    /// another, so one account cannot use up the service (or the disk) by
    /// creating rooms.
    pub max_rooms_per_user: usize,
    /// Occupants per room; room owners may set a lower limit.
    pub max_occupants: u32,
    /// History messages a new room keeps and sends to joining occupants.
    pub default_history: u32,
    /// The most history messages an owner may configure.
    pub max_history: u32,
    /// Affiliations (owners, admins, members, bans) per room.
    pub max_affiliations: usize,
    /// Messages an occupant may send in a burst...
    pub message_burst: u32,
    /// ...and per minute after the burst.
    pub messages_per_minute: u32,
    /// Whether users without an affiliation may register with a room
    /// (and so become members with a reserved nickname).
    pub unaffiliated_registration: bool,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            room_creation: RoomCreation::Anyone,
            max_rooms: 10_000,
            max_rooms_per_user: 100,
            max_occupants: 1_000,
            default_history: 20,
            max_history: 100,
            max_affiliations: 10_000,
            message_burst: 20,
            messages_per_minute: 120,
            unaffiliated_registration: false,
        }
    }
}

impl MucConfig {
    /// Reads and checks the `[muc]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> MucConfig {
        let defaults = MucConfig::default();
        let room_creation = match table.string("room_creation") {
            None => defaults.room_creation,
            Some(value) => {
                let found = RoomCreation::ALL
                    .iter()
                    .find(|(name, _)| *name == value.get_ref().as_str());
                match found {
                    Some(&(_, rc)) => rc,
                    None => {
                        let names: Vec<&str> = RoomCreation::ALL.iter().map(|&(n, _)| n).collect();
                        table.problem(
                            value.span(),
                            format_args!(
                                "muc.room_creation: expected one of {}; found {:?}",
                                names.join(", "),
                                value.get_ref()
                            ),
                        );
                        defaults.room_creation
                    }
                }
            }
        };
        let max_rooms = table.optional_integer("max_rooms", 1..=1_000_000, defaults.max_rooms);
        let max_rooms_per_user = table.optional_integer(
            "max_rooms_per_user",
            1..=1_000_000,
            defaults.max_rooms_per_user,
        );
        let max_occupants =
            table.optional_integer("max_occupants", 1..=100_000, defaults.max_occupants);
        // Read in the documented order, but checked against max_history,
        // which comes after it.
        let default_history = table.integer("default_history");
        let max_history: u32 =
            table.optional_integer("max_history", 0..=1_000, defaults.max_history);
        let default_history = match default_history {
            Some(value) => table
                .in_range("default_history", value, 0..=i64::from(max_history))
                .unwrap_or(defaults.default_history.min(max_history)),
            None => defaults.default_history.min(max_history),
        };
        MucConfig {
            room_creation,
            max_rooms,
            max_rooms_per_user,
            max_occupants,
            default_history,
            max_history,
            max_affiliations: table.optional_integer(
                "max_affiliations",
                1..=1_000_000,
                defaults.max_affiliations,
            ),
            message_burst: table.optional_integer(
                "message_burst",
                1..=10_000,
                defaults.message_burst,
            ),
            messages_per_minute: table.optional_integer(
                "messages_per_minute",
                1..=600_000,
                defaults.messages_per_minute,
            ),
            unaffiliated_registration: table
                .boolean("unaffiliated_registration")
                .map_or(defaults.unaffiliated_registration, Spanned::into_inner),
        }
    }
}
