//! The page's languages: English, Chinese (Simplified), Spanish, Russian and Portuguese.
//! Chosen by `?lang=`, else by `Accept-Language`, else English.

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
    Es,
    Ru,
    Pt,
}

impl Lang {
    pub const ALL: [Lang; 5] = [Lang::En, Lang::ZhCn, Lang::Es, Lang::Ru, Lang::Pt];

    /// BCP 47 tag, as used in `?lang=` and `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
            Lang::Es => "es",
            Lang::Ru => "ru",
            Lang::Pt => "pt",
        }
    }

    /// The language's own name, for the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
            Lang::Es => "Español",
            Lang::Ru => "Русский",
            Lang::Pt => "Português",
        }
    }

    /// A tag as a client sends it (`pt-BR`, `zh-Hans-CN`, `ES`): by primary subtag.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::ZhCn),
            "es" => Some(Lang::Es),
            "ru" => Some(Lang::Ru),
            "pt" => Some(Lang::Pt),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` header (highest `q`, then first).
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default();
            let mut q: u16 = 1000;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = parse_q(v).unwrap_or(0);
                }
            }
            if q == 0 {
                continue;
            }
            if let Some(lang) = Lang::from_tag(tag)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::ZhCn => &ZH_CN,
            Lang::Es => &ES,
            Lang::Ru => &RU,
            Lang::Pt => &PT,
        }
    }
}

/// `q` values in thousandths, without floating point (`0.8` → 800).
fn parse_q(v: &str) -> Option<u16> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let int: u16 = int.parse().ok()?;
    if int > 1 || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut f: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u16::from(b - b'0');
        f += digit * [100, 10, 1][i];
    }
    Some((int * 1000 + f).min(1000))
}

/// Every string the page shows. `{…}` placeholders are filled by the page.
pub struct Texts {
    pub page_title: &'static str,
    pub order: &'static str,
    pub total: &'static str,
    pub choose_heading: &'static str,
    pub choose_hint: &'static str,
    pub price_unavailable: &'static str,
    pub choice_unavailable: &'static str,
    /// Shown instead of the chooser when the shop cannot be paid here at the moment.
    pub nothing_to_choose: &'static str,
    pub send_exactly: &'static str,
    pub amount: &'static str,
    pub to_address: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub qr_label: &'static str,
    pub open_wallet: &'static str,
    /// `{asset}`, `{chain}`.
    pub network_warning: &'static str,
    /// `{asset}`, `{price}`, `{currency}`: the locked rate.
    pub rate: &'static str,
    pub expires_in: &'static str,
    pub waiting: &'static str,
    /// `{received}`, `{remaining}`.
    pub partial: &'static str,
    pub processing: &'static str,
    /// `{n}`, `{total}`.
    pub confirmations: &'static str,
    pub paid: &'static str,
    pub paid_text: &'static str,
    pub view_tx: &'static str,
    pub return_to_shop: &'static str,
    pub redirecting: &'static str,
    pub expired: &'static str,
    pub expired_text: &'static str,
    pub closed: &'static str,
    pub closed_text: &'static str,
    pub change_asset: &'static str,
    pub language: &'static str,
    pub not_found: &'static str,
    pub not_found_text: &'static str,
    pub live_hint: &'static str,
}

pub static EN: Texts = Texts {
    page_title: "Payment",
    order: "Order",
    total: "Total",
    choose_heading: "Choose how to pay",
    choose_hint: "Pick a coin and network. The amount is locked for the time shown.",
    price_unavailable: "price unavailable",
    choice_unavailable: "That option is not available right now. Please choose another.",
    nothing_to_choose: "This shop cannot take payments here right now. Please contact the shop; nothing has been charged.",
    send_exactly: "Send exactly",
    amount: "Amount",
    to_address: "To this address",
    copy: "Copy",
    copied: "Copied",
    qr_label: "QR code of the payment request",
    open_wallet: "Open in wallet",
    network_warning: "Send only {asset} on {chain}. Other coins or networks will be lost.",
    rate: "Rate: 1 {asset} = {price} {currency}",
    expires_in: "Time left",
    waiting: "Waiting for your payment…",
    partial: "Received {received}. Please send {remaining} more.",
    processing: "Payment received. Waiting for confirmations.",
    confirmations: "{n} of {total} confirmations",
    paid: "Payment complete",
    paid_text: "Thank you! Your payment is confirmed.",
    view_tx: "View transaction",
    return_to_shop: "Return to the shop",
    redirecting: "Taking you back to the shop…",
    expired: "This payment request has expired",
    expired_text: "Do not send any payment to it now. If you already paid, contact the merchant.",
    closed: "This order is closed",
    closed_text: "The merchant has closed this order. Do not send a payment.",
    change_asset: "Pay with another coin",
    language: "Language",
    not_found: "Payment page not found",
    not_found_text: "Check the link you were given, or ask the merchant for a new one.",
    live_hint: "This page updates by itself.",
};

pub static ZH_CN: Texts = Texts {
    page_title: "付款",
    order: "订单",
    total: "总计",
    choose_heading: "选择付款方式",
    choose_hint: "请选择币种和网络。金额在显示的时间内锁定。",
    price_unavailable: "暂无价格",
    choice_unavailable: "该选项暂不可用，请选择其他方式。",
    nothing_to_choose: "该商户目前无法在此收款。请联系商户；您未被扣款。",
    send_exactly: "请准确发送",
    amount: "金额",
    to_address: "到此地址",
    copy: "复制",
    copied: "已复制",
    qr_label: "付款请求二维码",
    open_wallet: "在钱包中打开",
    network_warning: "仅发送 {chain} 上的 {asset}。其他币种或网络的资产将会丢失。",
    rate: "汇率：1 {asset} = {price} {currency}",
    expires_in: "剩余时间",
    waiting: "正在等待您的付款…",
    partial: "已收到 {received}。请再发送 {remaining}。",
    processing: "已收到付款，正在等待确认。",
    confirmations: "{n} / {total} 个确认",
    paid: "付款完成",
    paid_text: "谢谢！您的付款已确认。",
    view_tx: "查看交易",
    return_to_shop: "返回商店",
    redirecting: "正在返回商店…",
    expired: "此付款请求已过期",
    expired_text: "请勿再向其付款。如果您已付款，请联系商家。",
    closed: "此订单已关闭",
    closed_text: "商家已关闭此订单。请勿付款。",
    change_asset: "使用其他币种付款",
    language: "语言",
    not_found: "未找到付款页面",
    not_found_text: "请检查您收到的链接，或向商家索取新链接。",
    live_hint: "此页面会自动更新。",
};

pub static ES: Texts = Texts {
    page_title: "Pago",
    order: "Pedido",
    total: "Total",
    choose_heading: "Elige cómo pagar",
    choose_hint: "Elige una moneda y una red. El importe queda fijado durante el tiempo indicado.",
    price_unavailable: "precio no disponible",
    choice_unavailable: "Esa opción no está disponible ahora. Elige otra.",
    nothing_to_choose: "Esta tienda no puede recibir pagos aquí por ahora. Contacta con la tienda; no se ha cobrado nada.",
    send_exactly: "Envía exactamente",
    amount: "Importe",
    to_address: "A esta dirección",
    copy: "Copiar",
    copied: "Copiado",
    qr_label: "Código QR de la solicitud de pago",
    open_wallet: "Abrir en la billetera",
    network_warning: "Envía solo {asset} en {chain}. Otras monedas o redes se perderán.",
    rate: "Tipo de cambio: 1 {asset} = {price} {currency}",
    expires_in: "Tiempo restante",
    waiting: "Esperando tu pago…",
    partial: "Recibido {received}. Envía {remaining} más.",
    processing: "Pago recibido. Esperando confirmaciones.",
    confirmations: "{n} de {total} confirmaciones",
    paid: "Pago completado",
    paid_text: "¡Gracias! Tu pago está confirmado.",
    view_tx: "Ver transacción",
    return_to_shop: "Volver a la tienda",
    redirecting: "Volviendo a la tienda…",
    expired: "Esta solicitud de pago ha caducado",
    expired_text: "No envíes ningún pago ahora. Si ya pagaste, contacta con el comercio.",
    closed: "Este pedido está cerrado",
    closed_text: "El comercio ha cerrado este pedido. No envíes ningún pago.",
    change_asset: "Pagar con otra moneda",
    language: "Idioma",
    not_found: "Página de pago no encontrada",
    not_found_text: "Revisa el enlace que recibiste o pide uno nuevo al comercio.",
    live_hint: "Esta página se actualiza sola.",
};

pub static RU: Texts = Texts {
    page_title: "Оплата",
    order: "Заказ",
    total: "Итого",
    choose_heading: "Выберите способ оплаты",
    choose_hint: "Выберите монету и сеть. Сумма зафиксирована на указанное время.",
    price_unavailable: "цена недоступна",
    choice_unavailable: "Этот вариант сейчас недоступен. Выберите другой.",
    nothing_to_choose: "Этот магазин сейчас не может принимать здесь платежи. Свяжитесь с магазином; деньги не списаны.",
    send_exactly: "Отправьте ровно",
    amount: "Сумма",
    to_address: "На этот адрес",
    copy: "Копировать",
    copied: "Скопировано",
    qr_label: "QR-код платёжного запроса",
    open_wallet: "Открыть в кошельке",
    network_warning: "Отправляйте только {asset} в сети {chain}. Другие монеты или сети будут потеряны.",
    rate: "Курс: 1 {asset} = {price} {currency}",
    expires_in: "Осталось времени",
    waiting: "Ожидаем ваш платёж…",
    partial: "Получено {received}. Отправьте ещё {remaining}.",
    processing: "Платёж получен. Ожидаем подтверждений.",
    confirmations: "{n} из {total} подтверждений",
    paid: "Оплата завершена",
    paid_text: "Спасибо! Ваш платёж подтверждён.",
    view_tx: "Посмотреть транзакцию",
    return_to_shop: "Вернуться в магазин",
    redirecting: "Возвращаем вас в магазин…",
    expired: "Срок действия платёжного запроса истёк",
    expired_text: "Не отправляйте на него платежи. Если вы уже оплатили, свяжитесь с продавцом.",
    closed: "Заказ закрыт",
    closed_text: "Продавец закрыл этот заказ. Не отправляйте платёж.",
    change_asset: "Оплатить другой монетой",
    language: "Язык",
    not_found: "Страница оплаты не найдена",
    not_found_text: "Проверьте полученную ссылку или попросите у продавца новую.",
    live_hint: "Страница обновляется автоматически.",
};

pub static PT: Texts = Texts {
    page_title: "Pagamento",
    order: "Pedido",
    total: "Total",
    choose_heading: "Escolha como pagar",
    choose_hint: "Escolha uma moeda e uma rede. O valor fica fixado pelo tempo indicado.",
    price_unavailable: "preço indisponível",
    choice_unavailable: "Essa opção não está disponível agora. Escolha outra.",
    nothing_to_choose: "Esta loja não pode receber pagamentos aqui agora. Contate a loja; nada foi cobrado.",
    send_exactly: "Envie exatamente",
    amount: "Valor",
    to_address: "Para este endereço",
    copy: "Copiar",
    copied: "Copiado",
    qr_label: "Código QR da solicitação de pagamento",
    open_wallet: "Abrir na carteira",
    network_warning: "Envie apenas {asset} na rede {chain}. Outras moedas ou redes serão perdidas.",
    rate: "Cotação: 1 {asset} = {price} {currency}",
    expires_in: "Tempo restante",
    waiting: "Aguardando seu pagamento…",
    partial: "Recebido {received}. Envie mais {remaining}.",
    processing: "Pagamento recebido. Aguardando confirmações.",
    confirmations: "{n} de {total} confirmações",
    paid: "Pagamento concluído",
    paid_text: "Obrigado! Seu pagamento foi confirmado.",
    view_tx: "Ver transação",
    return_to_shop: "Voltar à loja",
    redirecting: "Voltando à loja…",
    expired: "Esta solicitação de pagamento expirou",
    expired_text: "Não envie nenhum pagamento agora. Se já pagou, contate o lojista.",
    closed: "Este pedido está encerrado",
    closed_text: "O lojista encerrou este pedido. Não envie pagamento.",
    change_asset: "Pagar com outra moeda",
    language: "Idioma",
    not_found: "Página de pagamento não encontrada",
    not_found_text: "Verifique o link recebido ou peça um novo ao lojista.",
    live_hint: "Esta página se atualiza sozinha.",
};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::negotiate("pt-BR,pt;q=0.9,en;q=0.8"), Some(Lang::Pt));
        assert_eq!(
            Lang::negotiate("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4"),
            Some(Lang::Ru)
        );
        assert_eq!(Lang::negotiate("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(
            Lang::negotiate("fr;q=1, es;q=0.2, en;q=0.1"),
            Some(Lang::Es)
        );
        assert_eq!(Lang::negotiate("en;q=0, es"), Some(Lang::Es));
        assert_eq!(Lang::negotiate("de, fr"), None);
        assert_eq!(Lang::negotiate(""), None);
        assert_eq!(Lang::negotiate("es;q=abc, en;q=0.5"), Some(Lang::En));
    }

    #[test]
    fn q_values_parse_exactly() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.5"), Some(1000));
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("0.1234"), None);
    }

    #[test]
    fn every_language_fills_the_same_placeholders() {
        for lang in Lang::ALL {
            let t = lang.texts();
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
            for (s, keys) in [
                (t.network_warning, &["{asset}", "{chain}"][..]),
                (t.partial, &["{received}", "{remaining}"][..]),
                (t.confirmations, &["{n}", "{total}"][..]),
                (t.rate, &["{asset}", "{price}", "{currency}"][..]),
            ] {
                for k in keys {
                    assert!(s.contains(k), "{}: {s:?} lacks {k}", lang.tag());
                }
            }
        }
    }
}
