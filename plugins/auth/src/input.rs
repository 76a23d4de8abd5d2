//! Request bodies and their validation: pure functions only, so they are unit tested
//! natively (no host capability is called here).

use kirana_sdk::prelude::*;
use serde::Deserializer;

/// The roles a user can have; the closed list of API.md.
pub const ROLES: [&str; 3] = ["customer", "admin", "delivery_agent"];

/// Password length bounds, in characters. The upper bound keeps hashing cheap and
/// matches what a form would ever send.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// Emails are compared and stored trimmed and lowercased, so `A@X.in` and `a@x.in` are
/// one account.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// True for one of [`ROLES`].
pub fn is_role(role: &str) -> bool {
    ROLES.contains(&role)
}

/// Lets a field tell "absent" (`None`) from "null" (`Some(None)`), for PATCH bodies.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub fn check_password(v: &mut Validator, field: &str, password: &str) {
    let n = password.chars().count();
    v.check(
        (PASSWORD_MIN..=PASSWORD_MAX).contains(&n),
        field,
        &format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
    );
}

fn check_name(v: &mut Validator, name: &str) {
    v.length("name", name, 1, 100);
}

/// A phone is trimmed and must then be E.164.
fn clean_phone(v: &mut Validator, phone: Option<&str>) -> Option<String> {
    let phone = phone.map(str::trim)?;
    v.phone("phone", phone);
    Some(phone.to_string())
}

/// `POST /auth/signup` and (with `role`) `POST /admin/users`. Unknown fields, such as a
/// `role` sent to signup, are ignored.
#[derive(Debug, Deserialize)]
pub struct NewUserBody {
    pub email: String,
    pub password: String,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// `POST /admin/users`: a new user with an explicit role.
#[derive(Debug, Deserialize)]
pub struct AdminUserBody {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A validated new user, ready to hash and store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
}

impl NewUserBody {
    /// Validates every field at once; the role is always `customer`.
    pub fn validate(self) -> Result<NewUser, ApiError> {
        validate_new_user(self.email, self.password, self.name, self.phone, None)
    }
}

impl AdminUserBody {
    pub fn validate(self) -> Result<NewUser, ApiError> {
        validate_new_user(
            self.email,
            self.password,
            self.name,
            self.phone,
            Some(self.role),
        )
    }
}

fn validate_new_user(
    email: String,
    password: String,
    name: String,
    phone: Option<String>,
    role: Option<String>,
) -> Result<NewUser, ApiError> {
    let mut v = Validator::new();
    let email = normalize_email(&email);
    v.email("email", &email);
    check_password(&mut v, "password", &password);
    check_name(&mut v, &name);
    let phone = clean_phone(&mut v, phone.as_deref());
    let role = match role {
        None => "customer".to_string(),
        Some(r) => {
            v.check(
                is_role(&r),
                "role",
                "must be one of customer, admin, delivery_agent",
            );
            r
        }
    };
    v.finish()?;
    Ok(NewUser {
        email,
        password,
        name: name.trim().to_string(),
        phone,
        role,
    })
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

impl LoginBody {
    /// Only presence is checked: a malformed email is simply unknown (401), so login
    /// never tells which part of the credentials was wrong.
    pub fn validate(self) -> Result<(String, String), ApiError> {
        let mut v = Validator::new();
        let email = normalize_email(&self.email);
        v.check(!email.is_empty(), "email", "is required");
        v.check(!self.password.is_empty(), "password", "is required");
        v.finish()?;
        Ok((email, self.password))
    }
}

/// `POST /auth/refresh`.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    pub refresh_token: String,
}

impl RefreshBody {
    pub fn validate(self) -> Result<String, ApiError> {
        let token = self.refresh_token.trim().to_string();
        Validator::new()
            .check(!token.is_empty(), "refresh_token", "is required")
            .finish()?;
        Ok(token)
    }
}

/// `POST /auth/password`.
#[derive(Debug, Deserialize)]
pub struct PasswordChangeBody {
    pub current_password: String,
    pub new_password: String,
}

/// A validated password change.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

impl PasswordChangeBody {
    /// The new password follows the signup policy; the current one need only be present
    /// (an old account may predate the policy).
    pub fn validate(self) -> Result<PasswordChange, ApiError> {
        let mut v = Validator::new();
        v.check(
            !self.current_password.is_empty(),
            "current_password",
            "is required",
        );
        check_password(&mut v, "new_password", &self.new_password);
        v.finish()?;
        Ok(PasswordChange {
            current: self.current_password,
            new: self.new_password,
        })
    }
}

/// `PATCH /auth/me`: only `name` and `phone` change; any other field (role, email) is
/// ignored. `phone: null` clears the phone; `name: null` is refused.
#[derive(Debug, Default, Deserialize)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
}

/// What a PATCH changes: `None` keeps the current value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
}

impl ProfilePatch {
    pub fn validate(self) -> Result<ProfileChange, ApiError> {
        let mut v = Validator::new();
        let name = match self.name {
            None => None,
            Some(None) => {
                v.push("name", "must be a string");
                None
            }
            Some(Some(n)) => {
                check_name(&mut v, &n);
                Some(n.trim().to_string())
            }
        };
        let phone = self.phone.map(|p| clean_phone(&mut v, p.as_deref()));
        v.finish()?;
        Ok(ProfileChange { name, phone })
    }
}

/// `POST /addresses` and `PUT /addresses/{id}` (a full replace).
#[derive(Debug, Deserialize)]
pub struct AddressBody {
    pub label: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub pincode: String,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// A validated address; text is trimmed and an empty `line2` is no `line2`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressInput {
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub pincode: String,
    pub lat: f64,
    pub lon: f64,
    /// `None` when the client did not say.
    pub is_default: Option<bool>,
}

/// An Indian PIN code as the API takes it: exactly six ASCII digits.
pub fn is_pincode(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

impl AddressBody {
    pub fn validate(self) -> Result<AddressInput, ApiError> {
        let mut v = Validator::new();
        v.length("label", &self.label, 1, 50);
        v.length("line1", &self.line1, 1, 200);
        let line2 = self
            .line2
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
        if let Some(l) = &line2 {
            v.length("line2", l, 1, 200);
        }
        v.length("city", &self.city, 1, 100);
        v.check(
            is_pincode(&self.pincode),
            "pincode",
            "must be a string of 6 digits",
        );
        v.range("lat", self.lat, -90.0, 90.0);
        v.range("lon", self.lon, -180.0, 180.0);
        v.finish()?;
        Ok(AddressInput {
            label: self.label.trim().to_string(),
            line1: self.line1.trim().to_string(),
            line2,
            city: self.city.trim().to_string(),
            pincode: self.pincode,
            lat: self.lat,
            lon: self.lon,
            is_default: self.is_default,
        })
    }
}

/// Whether a new address is the default: as asked, else only when it is the user's
/// first address.
pub fn new_address_is_default(requested: Option<bool>, existing: i64) -> bool {
    requested.unwrap_or(existing == 0)
}

/// Whether a replaced address is the default: as asked, else unchanged.
pub fn replaced_address_is_default(requested: Option<bool>, current: bool) -> bool {
    requested.unwrap_or(current)
}

/// The optional `role` filter of `GET /admin/users`.
pub fn role_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) if is_role(r) => Ok(Some(r.to_string())),
        Some(_) => Err(ApiError::invalid_field(
            "role",
            "must be one of customer, admin, delivery_agent",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::serde_json;

    fn fields(e: &ApiError) -> Vec<String> {
        e.details["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn signup(v: serde_json::Value) -> Result<NewUser, ApiError> {
        serde_json::from_value::<NewUserBody>(v)
            .expect("body shape")
            .validate()
    }

    fn address(v: serde_json::Value) -> Result<AddressInput, ApiError> {
        serde_json::from_value::<AddressBody>(v)
            .expect("body shape")
            .validate()
    }

    fn home() -> serde_json::Value {
        json!({"label": "Home", "line1": "12 MG Road", "city": "Bengaluru",
               "pincode": "560001", "lat": 12.97, "lon": 77.59})
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Asha.K@Example.IN "), "asha.k@example.in");
    }

    #[test]
    fn signup_is_normalised_and_always_customer() {
        let u = signup(
            json!({"email": " A@X.In", "password": "secret123", "name": " Asha ",
                               "phone": "+919876543210", "role": "admin"}),
        )
        .unwrap();
        assert_eq!(u.email, "a@x.in");
        assert_eq!(u.name, "Asha");
        assert_eq!(u.role, "customer");
        assert_eq!(u.phone.as_deref(), Some("+919876543210"));
    }

    #[test]
    fn signup_lists_every_bad_field() {
        let e =
            signup(json!({"email": "nope", "password": "short", "name": "  ", "phone": "98765"}))
                .unwrap_err();
        assert_eq!(e.code, "validation_failed");
        assert_eq!(fields(&e), ["email", "password", "name", "phone"]);
    }

    #[test]
    fn password_bounds_count_characters() {
        let ok = |p: &str| signup(json!({"email": "a@x.in", "password": p, "name": "A"})).is_ok();
        assert!(ok("12345678"));
        assert!(!ok("1234567"));
        assert!(ok(&"é".repeat(128)));
        assert!(!ok(&"a".repeat(129)));
    }

    #[test]
    fn name_is_at_most_100_characters() {
        let name = "n".repeat(101);
        assert!(signup(json!({"email": "a@x.in", "password": "secret123", "name": name})).is_err());
    }

    #[test]
    fn admin_user_role_must_be_known() {
        let body = |role: &str| {
            serde_json::from_value::<AdminUserBody>(json!({"email": "a@x.in",
                "password": "secret123", "name": "A", "role": role}))
            .unwrap()
            .validate()
        };
        assert_eq!(body("delivery_agent").unwrap().role, "delivery_agent");
        assert_eq!(fields(&body("superuser").unwrap_err()), ["role"]);
    }

    #[test]
    fn login_needs_both_fields() {
        let e = LoginBody {
            email: " ".into(),
            password: String::new(),
        }
        .validate()
        .unwrap_err();
        assert_eq!(fields(&e), ["email", "password"]);
        let (email, _) = LoginBody {
            email: "A@X.IN".into(),
            password: "p".into(),
        }
        .validate()
        .unwrap();
        assert_eq!(email, "a@x.in");
    }

    #[test]
    fn password_change_checks_the_new_password_like_signup() {
        let body = |current: &str, new: &str| {
            serde_json::from_value::<PasswordChangeBody>(
                json!({"current_password": current, "new_password": new}),
            )
            .unwrap()
            .validate()
        };
        let ok = body("old", "brand-new-pass").unwrap();
        assert_eq!(
            (ok.current.as_str(), ok.new.as_str()),
            ("old", "brand-new-pass")
        );
        assert_eq!(fields(&body("old", "short").unwrap_err()), ["new_password"]);
        assert_eq!(
            fields(&body("", &"x".repeat(129)).unwrap_err()),
            ["current_password", "new_password"]
        );
        assert!(
            serde_json::from_value::<PasswordChangeBody>(json!({"new_password": "x"})).is_err()
        );
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: ProfilePatch =
            serde_json::from_value(json!({"phone": null, "role": "admin"})).unwrap();
        let c = p.validate().unwrap();
        assert_eq!(
            c,
            ProfileChange {
                name: None,
                phone: Some(None)
            }
        );

        let p: ProfilePatch = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p.validate().unwrap(), ProfileChange::default());

        let p: ProfilePatch = serde_json::from_value(json!({"name": null})).unwrap();
        assert_eq!(fields(&p.validate().unwrap_err()), ["name"]);

        let p: ProfilePatch =
            serde_json::from_value(json!({"name": " Ravi ", "phone": "12"})).unwrap();
        assert_eq!(fields(&p.validate().unwrap_err()), ["phone"]);
    }

    #[test]
    fn addresses_validate_pincode_and_coordinates() {
        let a = address(home()).unwrap();
        assert_eq!(a.line2, None);
        assert_eq!(a.is_default, None);

        let mut bad = home();
        bad["pincode"] = json!("56001");
        bad["lat"] = json!(90.5);
        bad["lon"] = json!(-180.01);
        bad["label"] = json!("");
        let e = address(bad).unwrap_err();
        assert_eq!(fields(&e), ["label", "pincode", "lat", "lon"]);

        for pin in ["5600011", "56000a", "", "５６０００１"] {
            let mut b = home();
            b["pincode"] = json!(pin);
            assert!(address(b).is_err(), "{pin}");
        }
        let mut edge = home();
        edge["lat"] = json!(-90);
        edge["lon"] = json!(180);
        edge["line2"] = json!("  ");
        assert!(address(edge).is_ok());
    }

    #[test]
    fn pincode_as_a_number_is_a_type_error() {
        let mut b = home();
        b["pincode"] = json!(560001);
        assert!(serde_json::from_value::<AddressBody>(b).is_err());
    }

    #[test]
    fn default_rules() {
        assert!(new_address_is_default(None, 0));
        assert!(!new_address_is_default(None, 2));
        assert!(new_address_is_default(Some(true), 2));
        assert!(!new_address_is_default(Some(false), 0));
        assert!(replaced_address_is_default(None, true));
        assert!(!replaced_address_is_default(Some(false), true));
        assert!(replaced_address_is_default(Some(true), false));
    }

    #[test]
    fn role_filter_is_checked() {
        assert_eq!(role_filter(None).unwrap(), None);
        assert_eq!(
            role_filter(Some("admin")).unwrap().as_deref(),
            Some("admin")
        );
        assert!(role_filter(Some("root")).is_err());
    }
}
