//! Roles and affiliations (XEP-0045 §5) and the privilege tables as pure
//! functions, so every rule of §5.1.1, §5.1.2, §5.2.1 and the use cases of
//! §8–§10 is checked in one place and unit-tested against the tables.

use crate::stanza::Condition;

/// Session-long standing in the room (§5.1), ordered by power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "none" => Some(Role::None),
            "visitor" => Some(Role::Visitor),
            "participant" => Some(Role::Participant),
            "moderator" => Some(Role::Moderator),
            _ => None,
        }
    }
}

/// Long-lived standing with the room (§5.2), ordered by power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        match s {
            "outcast" => Some(Affiliation::Outcast),
            "none" => Some(Affiliation::None),
            "member" => Some(Affiliation::Member),
            "admin" => Some(Affiliation::Admin),
            "owner" => Some(Affiliation::Owner),
            _ => None,
        }
    }

    /// Stable one-byte code for storage.
    pub fn code(self) -> u8 {
        match self {
            Affiliation::Outcast => 0,
            Affiliation::None => 1,
            Affiliation::Member => 2,
            Affiliation::Admin => 3,
            Affiliation::Owner => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Affiliation> {
        match code {
            0 => Some(Affiliation::Outcast),
            1 => Some(Affiliation::None),
            2 => Some(Affiliation::Member),
            3 => Some(Affiliation::Admin),
            4 => Some(Affiliation::Owner),
            _ => None,
        }
    }
}

/// §5.1.2 "Initial Role Based on Affiliation"; `None` where entry is not
/// permitted (outcasts; unaffiliated users of a members-only room).
pub fn initial_role(affiliation: Affiliation, moderated: bool, members_only: bool) -> Option<Role> {
    match affiliation {
        Affiliation::Owner | Affiliation::Admin => Some(Role::Moderator),
        Affiliation::Member => Some(Role::Participant),
        Affiliation::None if members_only => None,
        Affiliation::None if moderated => Some(Role::Visitor),
        Affiliation::None => Some(Role::Participant),
        Affiliation::Outcast => None,
    }
}

/// §5.2.1 "Enter Open Room" / "Enter Members-Only Room", with the errors
/// §7.2.7 and §7.2.8 name.
pub fn may_enter(affiliation: Affiliation, members_only: bool) -> Result<(), Condition> {
    match affiliation {
        Affiliation::Outcast => Err(Condition::Forbidden),
        Affiliation::None if members_only => Err(Condition::RegistrationRequired),
        _ => Ok(()),
    }
}

/// §5.1.1 "Send Messages to All". In an unmoderated room everyone present
/// has voice (the ** footnote); visitors only exist in moderated rooms.
pub fn may_send_groupchat(role: Role, moderated: bool) -> bool {
    match role {
        Role::None => false,
        Role::Visitor => !moderated,
        Role::Participant | Role::Moderator => true,
    }
}

/// §5.1.1 "Modify Subject": moderators always; participants when the room
/// lets occupants change it (`muc#roomconfig_changesubject`); visitors
/// never, since they have no voice.
pub fn may_change_subject(role: Role, occupants_may_change: bool) -> bool {
    match role {
        Role::Moderator => true,
        Role::Participant => occupants_may_change,
        Role::Visitor | Role::None => false,
    }
}

/// Who may send private messages (`muc#roomconfig_allowpm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmPolicy {
    Anyone,
    Participants,
    Moderators,
    Nobody,
}

impl PmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PmPolicy::Anyone => "anyone",
            PmPolicy::Participants => "participants",
            PmPolicy::Moderators => "moderators",
            PmPolicy::Nobody => "none",
        }
    }

    pub fn parse(s: &str) -> Option<PmPolicy> {
        match s {
            "anyone" => Some(PmPolicy::Anyone),
            "participants" => Some(PmPolicy::Participants),
            "moderators" => Some(PmPolicy::Moderators),
            "none" => Some(PmPolicy::Nobody),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            PmPolicy::Nobody => 0,
            PmPolicy::Moderators => 1,
            PmPolicy::Participants => 2,
            PmPolicy::Anyone => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<PmPolicy> {
        match code {
            0 => Some(PmPolicy::Nobody),
            1 => Some(PmPolicy::Moderators),
            2 => Some(PmPolicy::Participants),
            3 => Some(PmPolicy::Anyone),
            _ => None,
        }
    }
}

/// §5.1.1 "Send Private Messages" as the room's policy shapes it.
pub fn may_send_private(role: Role, policy: PmPolicy) -> bool {
    match policy {
        PmPolicy::Nobody => false,
        PmPolicy::Anyone => role >= Role::Visitor,
        PmPolicy::Participants => role >= Role::Participant,
        PmPolicy::Moderators => role == Role::Moderator,
    }
}

/// §5.1.1 "Invite Other Users" and §7.8.2: in a members-only room only
/// admins and owners invite, unless members are allowed to
/// (`muc#roomconfig_allowinvites`); in an open room anyone present may.
/// Admins and owners may invite without being in the room.
pub fn may_invite(
    role: Role,
    affiliation: Affiliation,
    members_only: bool,
    members_may_invite: bool,
) -> bool {
    if affiliation >= Affiliation::Admin {
        return true;
    }
    if members_only {
        return members_may_invite && affiliation == Affiliation::Member;
    }
    role >= Role::Visitor
}

/// Whether an actor may change an occupant's role (§8.2–§8.5, §9.6–§9.8)
/// and, if not, the error XEP-0045 names for it.
pub fn check_role_change(
    actor_role: Role,
    actor_affiliation: Affiliation,
    target_role: Role,
    target_affiliation: Affiliation,
    new_role: Role,
) -> Result<(), Condition> {
    // Every role change is a moderator action (§8 intro: forbidden).
    if actor_role != Role::Moderator {
        return Err(Condition::Forbidden);
    }
    if new_role == target_role {
        return Ok(());
    }
    let lowering = new_role < target_role;
    // §8.2: a user cannot be kicked by a moderator with a lower
    // affiliation.
    if new_role == Role::None && actor_affiliation < target_affiliation {
        return Err(Condition::NotAllowed);
    }
    // §8.4 / §9.7: voice and moderator status of an admin or owner cannot
    // be removed by anyone, nor can a moderator act on someone affiliated
    // above them.
    if new_role != Role::None
        && lowering
        && (target_affiliation >= Affiliation::Admin || actor_affiliation < target_affiliation)
    {
        return Err(Condition::NotAllowed);
    }
    // Granting and revoking moderator status, and removing a moderator,
    // are admin privileges (§5.1.3 state chart, §5.2.1 "Assign and Remove
    // Moderator Role").
    let touches_moderator = new_role == Role::Moderator || target_role == Role::Moderator;
    if touches_moderator && actor_affiliation < Affiliation::Admin {
        return Err(Condition::Forbidden);
    }
    Ok(())
}

/// Whether an actor may change a user's affiliation (§9, §10 and the
/// "Affiliation State Chart" of §5.2.2), with the error the XEP names.
/// `owners_after` is how many owners the room would have after the change
/// (every room keeps at least one, §10.1: conflict).
pub fn check_affiliation_change(
    actor: Affiliation,
    target_current: Affiliation,
    new: Affiliation,
    acting_on_self: bool,
    owners_after: usize,
) -> Result<(), Condition> {
    if actor < Affiliation::Admin {
        return Err(Condition::Forbidden);
    }
    // §9.1: admins and owners cannot ban themselves.
    if acting_on_self && new == Affiliation::Outcast {
        return Err(Condition::Conflict);
    }
    // Admins manage members, outcasts and unaffiliated users; admin and
    // owner status (granting or taking away) is the owners' alone.
    let needs_owner = new >= Affiliation::Admin || target_current >= Affiliation::Admin;
    if needs_owner && actor < Affiliation::Owner {
        return Err(if new == Affiliation::Outcast {
            // §9.1: an admin trying to ban an owner (or admin).
            Condition::NotAllowed
        } else {
            Condition::Forbidden
        });
    }
    // §10.6: the last owner cannot step down.
    if target_current == Affiliation::Owner && new != Affiliation::Owner && owners_after == 0 {
        return Err(Condition::Conflict);
    }
    Ok(())
}

/// The lists of §9.2, §9.5, §10.5 and §10.8 and who may read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Affiliation(Affiliation),
    Role(Role),
}

pub fn may_read_list(
    list: ListKind,
    actor_role: Role,
    actor_affiliation: Affiliation,
    non_anonymous: bool,
) -> bool {
    match list {
        // §8.5: the voice list is the moderators'.
        ListKind::Role(Role::Participant) | ListKind::Role(Role::Visitor) => {
            actor_role == Role::Moderator
        }
        // §9.8: the moderator list is the admins'.
        ListKind::Role(_) => actor_affiliation >= Affiliation::Admin,
        // §9.2: the ban list is the admins'.
        ListKind::Affiliation(Affiliation::Outcast) | ListKind::Affiliation(Affiliation::None) => {
            actor_affiliation >= Affiliation::Admin
        }
        // §9.5 and the *** note of §5.2.1: members may read the member
        // list only where JIDs are not hidden anyway.
        ListKind::Affiliation(Affiliation::Member) => {
            actor_affiliation >= Affiliation::Admin
                || (non_anonymous && actor_affiliation == Affiliation::Member)
        }
        // §10.5 / §10.8: the admin list is the owners' and (as Prosody
        // has it: any list at or below one's own rank) the admins'; the
        // owner list the owners'; both any member's in a non-anonymous
        // room.
        ListKind::Affiliation(Affiliation::Admin) => {
            actor_affiliation >= Affiliation::Admin
                || (non_anonymous && actor_affiliation >= Affiliation::Member)
        }
        ListKind::Affiliation(Affiliation::Owner) => {
            actor_affiliation == Affiliation::Owner
                || (non_anonymous && actor_affiliation >= Affiliation::Member)
        }
    }
}

/// The role an occupant has after its affiliation changed (§5.1.3 note:
/// a gained role is stable, a lost one is the implementation's choice —
/// here the role the new affiliation would have given on entering).
pub fn role_after_affiliation_change(
    current: Role,
    old: Affiliation,
    new: Affiliation,
    moderated: bool,
) -> Role {
    let entry = initial_role(new, moderated, false).unwrap_or(Role::None);
    if new > old {
        current.max(entry)
    } else if old >= Affiliation::Admin && new < Affiliation::Admin {
        entry
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Affiliation as A;
    use Role as R;

    const AFFILIATIONS: [Affiliation; 5] = [A::Outcast, A::None, A::Member, A::Admin, A::Owner];
    const ROLES: [Role; 4] = [R::None, R::Visitor, R::Participant, R::Moderator];

    #[test]
    fn names_round_trip() {
        for a in AFFILIATIONS {
            assert_eq!(Affiliation::parse(a.as_str()), Some(a));
            assert_eq!(Affiliation::from_code(a.code()), Some(a));
        }
        for r in ROLES {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Affiliation::parse("Owner"), None);
        assert_eq!(Role::parse(""), None);
        for p in [
            PmPolicy::Anyone,
            PmPolicy::Participants,
            PmPolicy::Moderators,
            PmPolicy::Nobody,
        ] {
            assert_eq!(PmPolicy::parse(p.as_str()), Some(p));
            assert_eq!(PmPolicy::from_code(p.code()), Some(p));
        }
    }

    /// §5.1.2, table "Initial Role Based on Affiliation", row by row.
    #[test]
    fn initial_roles_table() {
        // (moderated, members-only) -> None, Member, Admin, Owner
        let rows = [
            (
                (true, false),
                [
                    Some(R::Visitor),
                    Some(R::Participant),
                    Some(R::Moderator),
                    Some(R::Moderator),
                ],
            ),
            (
                (false, false),
                [
                    Some(R::Participant),
                    Some(R::Participant),
                    Some(R::Moderator),
                    Some(R::Moderator),
                ],
            ),
            (
                (false, true),
                [
                    None,
                    Some(R::Participant),
                    Some(R::Moderator),
                    Some(R::Moderator),
                ],
            ),
        ];
        for ((moderated, members_only), expected) in rows {
            let got: Vec<Option<Role>> = [A::None, A::Member, A::Admin, A::Owner]
                .into_iter()
                .map(|a| initial_role(a, moderated, members_only))
                .collect();
            assert_eq!(
                got, expected,
                "moderated={moderated} members_only={members_only}"
            );
        }
        assert_eq!(initial_role(A::Outcast, false, false), None);
    }

    /// §5.2.1, "Enter Open Room" and "Enter Members-Only Room".
    #[test]
    fn entering() {
        let open: Vec<bool> = AFFILIATIONS
            .iter()
            .map(|&a| may_enter(a, false).is_ok())
            .collect();
        assert_eq!(open, [false, true, true, true, true]);
        let members: Vec<bool> = AFFILIATIONS
            .iter()
            .map(|&a| may_enter(a, true).is_ok())
            .collect();
        assert_eq!(members, [false, false, true, true, true]);
        assert_eq!(may_enter(A::Outcast, false), Err(Condition::Forbidden));
        assert_eq!(
            may_enter(A::None, true),
            Err(Condition::RegistrationRequired)
        );
    }

    /// §5.1.1, "Privileges Associated With Roles", the rows about speaking.
    #[test]
    fn role_privileges_table() {
        // Send Messages to All: No, No**, Yes, Yes (moderated room).
        let all: Vec<bool> = ROLES.iter().map(|&r| may_send_groupchat(r, true)).collect();
        assert_eq!(all, [false, false, true, true]);
        assert!(may_send_groupchat(R::Visitor, false), "** footnote");
        // Modify Subject: No, No*, Yes*, Yes.
        let subject: Vec<bool> = ROLES.iter().map(|&r| may_change_subject(r, true)).collect();
        assert_eq!(subject, [false, false, true, true]);
        let subject: Vec<bool> = ROLES
            .iter()
            .map(|&r| may_change_subject(r, false))
            .collect();
        assert_eq!(subject, [false, false, false, true]);
        // Send Private Messages: No, Yes*, Yes, Yes.
        let pm: Vec<bool> = ROLES
            .iter()
            .map(|&r| may_send_private(r, PmPolicy::Anyone))
            .collect();
        assert_eq!(pm, [false, true, true, true]);
        let pm: Vec<bool> = ROLES
            .iter()
            .map(|&r| may_send_private(r, PmPolicy::Participants))
            .collect();
        assert_eq!(pm, [false, false, true, true]);
        let pm: Vec<bool> = ROLES
            .iter()
            .map(|&r| may_send_private(r, PmPolicy::Moderators))
            .collect();
        assert_eq!(pm, [false, false, false, true]);
        assert!(
            ROLES
                .iter()
                .all(|&r| !may_send_private(r, PmPolicy::Nobody))
        );
        // Invite Other Users (open room): No, Yes*, Yes*, Yes.
        let invite: Vec<bool> = ROLES
            .iter()
            .map(|&r| may_invite(r, A::None, false, false))
            .collect();
        assert_eq!(invite, [false, true, true, true]);
    }

    #[test]
    fn invitations_in_members_only_rooms() {
        assert!(!may_invite(R::Participant, A::Member, true, false));
        assert!(may_invite(R::Participant, A::Member, true, true));
        assert!(!may_invite(R::Participant, A::None, true, true));
        assert!(may_invite(R::None, A::Admin, true, false));
        assert!(may_invite(R::None, A::Owner, false, false));
    }

    /// §5.1.1 "Kick", "Grant Voice", "Revoke Voice" (with ***), §8.2 and
    /// §9.6/§9.7.
    #[test]
    fn role_changes() {
        use Condition::*;
        // Only moderators act on roles.
        for r in [R::None, R::Visitor, R::Participant] {
            assert_eq!(
                check_role_change(r, A::Owner, R::Participant, A::None, R::None),
                Err(Forbidden)
            );
        }
        // Kick participants and visitors.
        assert_eq!(
            check_role_change(R::Moderator, A::None, R::Participant, A::None, R::None),
            Ok(())
        );
        assert_eq!(
            check_role_change(R::Moderator, A::Member, R::Visitor, A::None, R::None),
            Ok(())
        );
        // A member moderator cannot kick an admin; an admin cannot kick an owner.
        assert_eq!(
            check_role_change(R::Moderator, A::Member, R::Participant, A::Admin, R::None),
            Err(NotAllowed)
        );
        assert_eq!(
            check_role_change(R::Moderator, A::Admin, R::Moderator, A::Owner, R::None),
            Err(NotAllowed)
        );
        assert_eq!(
            check_role_change(R::Moderator, A::Owner, R::Moderator, A::Admin, R::None),
            Ok(())
        );
        // Grant and revoke voice.
        assert_eq!(
            check_role_change(R::Moderator, A::None, R::Visitor, A::None, R::Participant),
            Ok(())
        );
        assert_eq!(
            check_role_change(R::Moderator, A::None, R::Participant, A::None, R::Visitor),
            Ok(())
        );
        // *** never from an admin or owner, not even by an owner.
        assert_eq!(
            check_role_change(R::Moderator, A::Owner, R::Participant, A::Admin, R::Visitor),
            Err(NotAllowed)
        );
        assert_eq!(
            check_role_change(
                R::Moderator,
                A::Member,
                R::Participant,
                A::Owner,
                R::Visitor
            ),
            Err(NotAllowed)
        );
        // Not from someone affiliated above the moderator.
        assert_eq!(
            check_role_change(R::Moderator, A::None, R::Participant, A::Member, R::Visitor),
            Err(NotAllowed)
        );
        // Moderator status is granted and revoked by admins and owners only.
        assert_eq!(
            check_role_change(
                R::Moderator,
                A::Member,
                R::Participant,
                A::None,
                R::Moderator
            ),
            Err(Forbidden)
        );
        assert_eq!(
            check_role_change(
                R::Moderator,
                A::Admin,
                R::Participant,
                A::None,
                R::Moderator
            ),
            Ok(())
        );
        assert_eq!(
            check_role_change(
                R::Moderator,
                A::Admin,
                R::Moderator,
                A::Member,
                R::Participant
            ),
            Ok(())
        );
        // ... and never from an admin or owner (§9.7).
        assert_eq!(
            check_role_change(
                R::Moderator,
                A::Owner,
                R::Moderator,
                A::Admin,
                R::Participant
            ),
            Err(NotAllowed)
        );
        // No change is always fine for a moderator.
        assert_eq!(
            check_role_change(R::Moderator, A::None, R::Moderator, A::Owner, R::Moderator),
            Ok(())
        );
    }

    /// §5.2.1 "Ban", "Edit Member List", "Edit Admin List", "Edit Owner
    /// List" and the §5.2.2 state chart.
    #[test]
    fn affiliation_changes() {
        use Condition::*;
        // Outcasts, unaffiliated users and members cannot change anything.
        for actor in [A::Outcast, A::None, A::Member] {
            for target in AFFILIATIONS {
                for new in AFFILIATIONS {
                    assert_eq!(
                        check_affiliation_change(actor, target, new, false, 1),
                        Err(Forbidden)
                    );
                }
            }
        }
        // Admins: ban members and unaffiliated users, edit the member list.
        for target in [A::Outcast, A::None, A::Member] {
            for new in [A::Outcast, A::None, A::Member] {
                assert_eq!(
                    check_affiliation_change(A::Admin, target, new, false, 1),
                    Ok(()),
                    "{target:?}->{new:?}"
                );
            }
            assert_eq!(
                check_affiliation_change(A::Admin, target, A::Admin, false, 1),
                Err(Forbidden)
            );
            assert_eq!(
                check_affiliation_change(A::Admin, target, A::Owner, false, 1),
                Err(Forbidden)
            );
        }
        // ... but not touch admins or owners; banning them is not-allowed.
        assert_eq!(
            check_affiliation_change(A::Admin, A::Owner, A::Outcast, false, 1),
            Err(NotAllowed)
        );
        assert_eq!(
            check_affiliation_change(A::Admin, A::Admin, A::Member, false, 1),
            Err(Forbidden)
        );
        // Owners change anything.
        for target in AFFILIATIONS {
            for new in AFFILIATIONS {
                assert_eq!(
                    check_affiliation_change(A::Owner, target, new, false, 1),
                    Ok(())
                );
            }
        }
        // Nobody bans themselves.
        assert_eq!(
            check_affiliation_change(A::Owner, A::Owner, A::Outcast, true, 1),
            Err(Conflict)
        );
        assert_eq!(
            check_affiliation_change(A::Admin, A::Admin, A::Outcast, true, 1),
            Err(Conflict)
        );
        // The last owner cannot step down; with another owner they can.
        assert_eq!(
            check_affiliation_change(A::Owner, A::Owner, A::Admin, true, 0),
            Err(Conflict)
        );
        assert_eq!(
            check_affiliation_change(A::Owner, A::Owner, A::Admin, true, 1),
            Ok(())
        );
        assert_eq!(
            check_affiliation_change(A::Owner, A::Owner, A::Owner, true, 1),
            Ok(())
        );
    }

    /// §5.2.1 "Retrieve Member List" (***), §9.2, §9.8, §10.5, §10.8.
    #[test]
    fn list_access() {
        let member = ListKind::Affiliation(A::Member);
        assert!(!may_read_list(member, R::Participant, A::Member, false));
        assert!(may_read_list(member, R::Participant, A::Member, true));
        assert!(!may_read_list(member, R::Participant, A::None, true));
        assert!(may_read_list(member, R::None, A::Admin, false));
        let owners = ListKind::Affiliation(A::Owner);
        assert!(!may_read_list(owners, R::Moderator, A::Admin, false));
        assert!(may_read_list(owners, R::None, A::Owner, false));
        assert!(may_read_list(owners, R::None, A::Member, true));
        let admins = ListKind::Affiliation(A::Admin);
        assert!(may_read_list(admins, R::Moderator, A::Admin, false));
        assert!(!may_read_list(admins, R::Moderator, A::Member, false));
        let bans = ListKind::Affiliation(A::Outcast);
        assert!(!may_read_list(bans, R::Moderator, A::Member, true));
        assert!(may_read_list(bans, R::None, A::Admin, false));
        let voice = ListKind::Role(R::Participant);
        assert!(may_read_list(voice, R::Moderator, A::None, false));
        assert!(!may_read_list(voice, R::Participant, A::Owner, false));
        let moderators = ListKind::Role(R::Moderator);
        assert!(!may_read_list(moderators, R::Moderator, A::Member, false));
        assert!(may_read_list(moderators, R::Moderator, A::Admin, false));
    }

    #[test]
    fn roles_follow_affiliation_changes() {
        // Gained: stable (a member of a moderated room gets voice).
        assert_eq!(
            role_after_affiliation_change(R::Visitor, A::None, A::Member, true),
            R::Participant
        );
        assert_eq!(
            role_after_affiliation_change(R::Participant, A::Member, A::Admin, false),
            R::Moderator
        );
        // Lost admin: back to what the new affiliation gives.
        assert_eq!(
            role_after_affiliation_change(R::Moderator, A::Admin, A::Member, true),
            R::Participant
        );
        assert_eq!(
            role_after_affiliation_change(R::Moderator, A::Owner, A::None, true),
            R::Visitor
        );
        // Lost membership: a temporary role stays.
        assert_eq!(
            role_after_affiliation_change(R::Participant, A::Member, A::None, true),
            R::Participant
        );
    }
}
