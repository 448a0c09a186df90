//! The `webhooks` plugin (API.md §7.2): the organization's webhook targets and their
//! delivery log over the host's `webhook-delivery` interface. The plugin reads and checks
//! request bodies and shapes the answers; the host stores the targets, matches events,
//! signs, retries and keeps the dead-letter list, and re-checks every field.

mod model;

use gateway_sdk::webhooks::{self, DeliveryStatus, INVALID_STATUS};
use gateway_sdk::{
    ApiError, Capability, Json, Manifest, Page, Plugin, Request, Route, page_sorted,
};
use model::{
    CreateBody, DeliveryDetail, DeliveryView, Queued, ReplayDeadBody, UpdateBody, WebhookView,
};

/// A body that does not parse is a validation error with the §7 status.
fn body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    req.json().map_err(|e| e.with_status(INVALID_STATUS))
}

fn id<'r>(req: &'r Request) -> Result<&'r str, ApiError> {
    req.param("id")
}

fn list_webhooks(req: &Request) -> Result<Json<Page<WebhookView>>, ApiError> {
    let page = req.page()?;
    let all = webhooks::list()?;
    let p = page_sorted(&all, |w| w.id.as_bytes(), &page);
    Ok(Json(p.map(|w| WebhookView::from(w.clone()))))
}

fn create_webhook(req: &Request) -> Result<Json<WebhookView>, ApiError> {
    let b: CreateBody = body(req)?;
    let (created, secret) = webhooks::create(&b.into_patch()?)?;
    let mut view = WebhookView::from(created);
    view.secret = secret;
    Ok(Json(view))
}

fn get_webhook(req: &Request) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::get(id(req)?)?.into()))
}

fn update_webhook(req: &Request) -> Result<Json<WebhookView>, ApiError> {
    let b: UpdateBody = body(req)?;
    let id = id(req)?;
    let current = webhooks::get(id)?;
    let patch = b.into_patch(&current)?;
    Ok(Json(webhooks::update(id, &patch)?.into()))
}

fn delete_webhook(req: &Request) -> Result<(), ApiError> {
    webhooks::delete(id(req)?)?;
    Ok(())
}

fn test_webhook(req: &Request) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(webhooks::test(id(req)?)?.into()))
}

fn list_deliveries(req: &Request) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let page = req.page()?;
    let status = match req.query("status") {
        None | Some("") => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "status must be pending, retrying, succeeded or dead",
            )
        })?),
    };
    // `req.page()` checked the cursor is one of ours.
    let cursor = req.query("cursor").filter(|c| !c.is_empty());
    let event = req.query("event").filter(|e| !e.is_empty());
    let (items, next) = webhooks::deliveries(id(req)?, status, event, cursor, page.limit)?;
    Ok(Json(Page {
        data: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor: next,
    }))
}

fn get_delivery(req: &Request) -> Result<Json<DeliveryDetail>, ApiError> {
    let (d, attempts, envelope) = webhooks::delivery_detail(id(req)?, req.param("delivery")?)?;
    Ok(Json(DeliveryDetail::new(d, attempts, &envelope)))
}

fn replay_delivery(req: &Request) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        webhooks::replay(id(req)?, req.param("delivery")?)?.into(),
    ))
}

fn replay_dead_letters(req: &Request) -> Result<Json<Queued>, ApiError> {
    let b: ReplayDeadBody = body(req)?;
    let limit = b.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::invalid_field("limit", "limit must be 1 to 1000").with_status(INVALID_STATUS)
        );
    }
    if let (Some(s), Some(u)) = (b.since, b.until)
        && s > u
    {
        return Err(
            ApiError::invalid_field("since", "since must not be after until")
                .with_status(INVALID_STATUS),
        );
    }
    let queued = webhooks::replay_dead(id(req)?, b.since, b.until, limit)?;
    Ok(Json(Queued { queued }))
}

struct Webhooks;

impl Plugin for Webhooks {
    fn manifest() -> Manifest {
        let m = Capability::Manage;
        Manifest::new("webhooks", env!("CARGO_PKG_VERSION"))
            .route(
                Route::get("/webhooks", m, "listWebhooks")
                    .summary("The organization's webhooks")
                    .paged()
                    .response::<Page<WebhookView>>(),
                list_webhooks,
            )
            .route(
                Route::post("/webhooks", m, "createWebhook")
                    .summary("Create a webhook (the generated secret is answered once)")
                    .status(201)
                    .request::<CreateBody>()
                    .response::<WebhookView>(),
                create_webhook,
            )
            .route(
                Route::get("/webhooks/{id}", m, "getWebhook")
                    .summary("One webhook")
                    .response::<WebhookView>(),
                get_webhook,
            )
            .route(
                Route::patch("/webhooks/{id}", m, "updateWebhook")
                    .summary("Change some of a webhook's fields; a new secret rotates it")
                    .request::<UpdateBody>()
                    .response::<WebhookView>(),
                update_webhook,
            )
            .route(
                Route::delete("/webhooks/{id}", m, "deleteWebhook")
                    .summary("Delete a webhook, its pending retries and its deliveries")
                    .status(204),
                delete_webhook,
            )
            .route(
                Route::post("/webhooks/{id}:test", m, "testWebhook")
                    .summary("Send one signed webhook.test event now (not retried)")
                    .response::<DeliveryView>(),
                test_webhook,
            )
            .route(
                Route::get("/webhooks/{id}/deliveries", m, "listDeliveries")
                    .summary(
                        "The webhook's deliveries, newest first (status=dead: the dead letters)",
                    )
                    .query("status", "pending, retrying, succeeded or dead", false)
                    .query("event", "Only deliveries of this event", false)
                    .paged()
                    .response::<Page<DeliveryView>>(),
                list_deliveries,
            )
            .route(
                Route::get("/webhooks/{id}/deliveries/{delivery}", m, "getDelivery")
                    .summary("One delivery with its attempts and the envelope it carries")
                    .response::<DeliveryDetail>(),
                get_delivery,
            )
            .route(
                Route::post(
                    "/webhooks/{id}/deliveries/{delivery}:replay",
                    m,
                    "replayDelivery",
                )
                .summary("Queue a finished delivery again (same webhook-id)")
                .status(202)
                .response::<DeliveryView>(),
                replay_delivery,
            )
            .route(
                Route::post("/webhooks/{id}:replay", m, "replayDeadLetters")
                    .summary("Queue the dead deliveries not yet replayed, oldest first")
                    .status(202)
                    .request::<ReplayDeadBody>()
                    .response::<Queued>(),
                replay_dead_letters,
            )
    }
}

gateway_sdk::export!(Webhooks);
