//! The demo association: a treasurer and two members with charges in their baskets.
//! Seeding twice adds nothing (emails and posting keys are unique).

use secrecy::SecretString;

use crate::accounts::{self, NewUser};
use crate::basket::{self, NewCharge};
use crate::config::ChartOfAccounts;
use crate::db::{self, Pool};
use crate::domain::{ChargeCategory, Email, Money, Role};

pub struct DemoLogin {
    pub role: &'static str,
    pub email: &'static str,
    pub password: &'static str,
}

pub const LOGINS: [DemoLogin; 4] = [
    DemoLogin {
        role: "trésorière (admin)",
        email: "tresorier@exemple.org",
        password: "tresorier-demo",
    },
    DemoLogin {
        role: "secrétaire (gestion)",
        email: "secretaire@exemple.org",
        password: "secretaire-demo",
    },
    DemoLogin {
        role: "membre",
        email: "membre@exemple.org",
        password: "membre-demo",
    },
    DemoLogin {
        role: "membre",
        email: "membre2@exemple.org",
        password: "membre2-demo",
    },
];

const SEASON: &str = "2026-2027";

/// The key `obole demo` seals gateway credentials with when none is set: public, so it
/// protects nothing, and never to be used for a real portal.
pub const SETTINGS_KEY: &str = "ZGVtby1vYm9sZS1zZXR0aW5ncy1rZXktMzItYnl0ZXM=";

pub async fn seed(pool: &Pool, accounts: &ChartOfAccounts) -> anyhow::Result<()> {
    crate::account_plan::adopt_configured_accounts(pool, accounts).await?;
    let people: [(&DemoLogin, Role, &str, &str); 4] = [
        (&LOGINS[0], Role::Admin, "Claire", "Trésor"),
        (&LOGINS[1], Role::Manager, "Sami", "Registre"),
        (&LOGINS[2], Role::Member, "Camille", "Martin"),
        (&LOGINS[3], Role::Member, "Louis", "Bernard"),
    ];
    let mut ids = Vec::new();
    for (login, role, first, last) in people {
        let email = Email::parse(login.email)?;
        let id = accounts::create_user(
            pool,
            NewUser {
                email: &email,
                password: SecretString::from(login.password),
                role,
                first_name: first,
                last_name: last,
            },
        )
        .await?;
        ids.push(id);
    }
    let today = db::today_text();
    let charges: [(usize, ChargeCategory, &str, i64, &str); 7] = [
        (
            2,
            ChargeCategory::Dues,
            "Cotisation 2026-2027",
            4500,
            "dues",
        ),
        (
            2,
            ChargeCategory::Insurance,
            "Licence-assurance fédérale",
            2150,
            "insurance",
        ),
        (
            2,
            ChargeCategory::Outings,
            "Sortie au lac d'Annecy",
            1800,
            "outing-annecy",
        ),
        (
            2,
            ChargeCategory::Shirts,
            "Tee-shirt du club (taille M)",
            1250,
            "shirt",
        ),
        (
            3,
            ChargeCategory::Dues,
            "Cotisation 2026-2027",
            4500,
            "dues",
        ),
        (
            3,
            ChargeCategory::Insurance,
            "Licence-assurance fédérale",
            2150,
            "insurance",
        ),
        (
            3,
            ChargeCategory::Outings,
            "Week-end en refuge",
            6500,
            "outing-refuge",
        ),
    ];
    for (who, category, label, cents, key) in charges {
        let member_id = &ids[who];
        let posting_key = format!("demo:{member_id}:{SEASON}:{key}");
        basket::add_charge(
            pool,
            accounts,
            NewCharge {
                member_id,
                category: category.as_str(),
                label,
                amount: Money::from_cents(cents),
                season: Some(SEASON),
                date: &today,
                posting_key: &posting_key,
                due_on: None,
            },
        )
        .await?;
    }
    Ok(())
}
