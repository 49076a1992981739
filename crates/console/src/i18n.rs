//! The console's strings in the checkout's five languages (English, Chinese (Simplified),
//! Spanish, Russian, Portuguese), chosen like the checkout's (`?lang=`, then the switcher's
//! cookie, then `Accept-Language`). Every entry has all five: the macro will not compile
//! without them. `{…}` placeholders are filled by the pages; a test checks each language
//! keeps them. Messages of the engine (why an action was refused) stay in English.

use coffer_checkout::i18n::Lang;
use coffer_engine::EngineError;

macro_rules! texts {
    ($($name:ident: [$en:expr, $zh:expr, $es:expr, $ru:expr, $pt:expr $(,)?],)*) => {
        /// Every string of the console's pages.
        pub struct Texts {
            lang: usize,
            $(pub $name: &'static str,)*
        }
        pub static EN: Texts = Texts { lang: 0, $($name: $en,)* };
        pub static ZH_CN: Texts = Texts { lang: 1, $($name: $zh,)* };
        pub static ES: Texts = Texts { lang: 2, $($name: $es,)* };
        pub static RU: Texts = Texts { lang: 3, $($name: $ru,)* };
        pub static PT: Texts = Texts { lang: 4, $($name: $pt,)* };
        #[cfg(test)]
        fn all_fields(t: &Texts) -> Vec<(&'static str, &'static str)> {
            vec![$((stringify!($name), t.$name),)*]
        }
    };
}

/// The console's texts in `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::En => &EN,
        Lang::ZhCn => &ZH_CN,
        Lang::Es => &ES,
        Lang::Ru => &RU,
        Lang::Pt => &PT,
    }
}

impl Texts {
    /// A machine word (a status, reason, cause, role…) in this language; unknown words as
    /// they are.
    pub fn word<'a>(&self, word: &'a str) -> &'a str {
        WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map_or(word, |(_, tr)| tr[self.lang])
    }

    /// The button that moves a payout request to `status`.
    pub fn payout_move<'a>(&self, status: &'a str) -> &'a str {
        MOVES
            .iter()
            .find(|(w, _)| *w == status)
            .map_or(status, |(_, tr)| tr[self.lang])
    }

    /// The notice after a redirect (`?ok=saved`).
    pub fn ok_message(&self, code: &str) -> &'static str {
        NOTICES
            .iter()
            .find(|(w, _)| *w == code)
            .map_or(NOTICES[0].1[self.lang], |(_, tr)| tr[self.lang])
    }

    /// Why the engine refused, with its stable code.
    pub fn engine_error(&self, e: &EngineError) -> String {
        format!("{}: {e} ({})", self.not_done, e.code())
    }
}

texts! {
    skip_to_content: ["Skip to content", "跳到内容", "Saltar al contenido", "К содержимому", "Ir para o conteúdo"],
    language: ["Language", "语言", "Idioma", "Язык", "Idioma"],
    sections: ["Sections", "栏目", "Secciones", "Разделы", "Seções"],
    pages: ["Pages", "分页", "Páginas", "Страницы", "Páginas"],
    operator: ["Operator", "运营者", "Operador", "Оператор", "Operador"],
    sign_in: ["Sign in", "登录", "Iniciar sesión", "Вход", "Entrar"],
    sign_out: ["Sign out", "退出", "Cerrar sesión", "Выйти", "Sair"],
    sign_out_everywhere: ["Sign out everywhere", "在所有设备上退出", "Cerrar sesión en todas partes", "Выйти на всех устройствах", "Sair em todos os dispositivos"],
    username: ["Username", "用户名", "Usuario", "Имя пользователя", "Usuário"],
    password: ["Password", "密码", "Contraseña", "Пароль", "Senha"],
    wrong_login: ["Wrong username or password.", "用户名或密码错误。", "Usuario o contraseña incorrectos.", "Неверное имя пользователя или пароль.", "Usuário ou senha incorretos."],
    locked: ["Too many failed attempts for this username. Try again in {minutes} min.", "该用户名失败次数过多，请 {minutes} 分钟后再试。", "Demasiados intentos fallidos para este usuario. Inténtalo de nuevo en {minutes} min.", "Слишком много неудачных попыток для этого имени. Повторите через {minutes} мин.", "Tentativas demais com este usuário. Tente de novo em {minutes} min."],
    busy: ["Too many sign-ins right now. Try again in a moment.", "当前登录请求过多，请稍后再试。", "Demasiados inicios de sesión ahora. Inténtalo en un momento.", "Сейчас слишком много входов. Попробуйте чуть позже.", "Muitos acessos agora. Tente de novo em instantes."],
    account_disabled: ["This account is disabled, or its merchant is suspended.", "此账户已停用，或其商户已被暂停。", "Esta cuenta está desactivada o su comercio está suspendido.", "Учётная запись отключена или её продавец приостановлен.", "Esta conta está desativada ou o lojista está suspenso."],
    session_ended: ["Your session has ended. Please sign in again.", "会话已结束，请重新登录。", "Tu sesión ha terminado. Vuelve a iniciar sesión.", "Сеанс завершён. Войдите снова.", "Sua sessão terminou. Entre novamente."],
    form_expired: ["This form is no longer valid", "此表单已失效", "Este formulario ya no es válido", "Форма больше недействительна", "Este formulário não é mais válido"],
    form_expired_text: ["Nothing was changed. Reload the page and try again.", "未做任何更改。请刷新页面后重试。", "No se ha cambiado nada. Recarga la página e inténtalo de nuevo.", "Ничего не изменено. Обновите страницу и попробуйте снова.", "Nada foi alterado. Recarregue a página e tente de novo."],
    setup_needed: ["This server has no operator yet.", "此服务器尚无运营者。", "Este servidor aún no tiene operador.", "У этого сервера ещё нет оператора.", "Este servidor ainda não tem operador."],
    setup_needed_text: ["Open the one-time setup link printed in the server's log at start-up, or print a new one on the server with:", "请打开服务器启动日志中的一次性设置链接，或在服务器上运行以下命令生成新链接：", "Abre el enlace de configuración de un solo uso que aparece en el registro del servidor al arrancar, o genera uno nuevo en el servidor con:", "Откройте одноразовую ссылку настройки из журнала сервера при запуске или создайте новую на сервере командой:", "Abra o link de configuração de uso único mostrado no log do servidor ao iniciar, ou gere um novo no servidor com:"],
    two_step: ["Two-step sign-in", "两步验证登录", "Inicio de sesión en dos pasos", "Двухэтапный вход", "Login em duas etapas"],
    code_hint: ["Enter the 6-digit code your authenticator app shows for Coffer.", "请输入验证器应用中 Coffer 的 6 位验证码。", "Introduce el código de 6 dígitos que muestra tu app de autenticación para Coffer.", "Введите 6-значный код Coffer из приложения-аутентификатора.", "Digite o código de 6 dígitos que seu app autenticador mostra para o Coffer."],
    code: ["Code", "验证码", "Código", "Код", "Código"],
    verify: ["Verify", "验证", "Verificar", "Подтвердить", "Verificar"],
    wrong_code: ["That code is not right, or was used already.", "验证码错误或已被使用。", "Ese código no es correcto o ya se usó.", "Код неверен или уже использован.", "Esse código não está certo ou já foi usado."],
    start_over: ["Start over", "重新开始", "Empezar de nuevo", "Начать заново", "Recomeçar"],
    join_title: ["Create your console account", "创建控制台账户", "Crea tu cuenta de la consola", "Создайте учётную запись консоли", "Crie sua conta do console"],
    invited_to: ["You are invited as {role} of {merchant}.", "您受邀成为 {merchant} 的{role}。", "Te han invitado como {role} de {merchant}.", "Вас пригласили как {role} в {merchant}.", "Você foi convidado como {role} de {merchant}."],
    invited_operator: ["You are invited as an operator of this server.", "您受邀成为此服务器的运营者。", "Te han invitado como operador de este servidor.", "Вас пригласили оператором этого сервера.", "Você foi convidado como operador deste servidor."],
    setup_text: ["Set up this server: the account you create is its first operator.", "设置此服务器：您创建的账户将成为第一个运营者。", "Configura este servidor: la cuenta que crees será su primer operador.", "Настройка сервера: создаваемая учётная запись станет первым оператором.", "Configure este servidor: a conta que você criar será o primeiro operador."],
    choose_username: ["Choose a username", "选择用户名", "Elige un nombre de usuario", "Выберите имя пользователя", "Escolha um nome de usuário"],
    username_rule: ["3 to 64 letters, digits or . _ @ -", "3 到 64 个字母、数字或 . _ @ -", "De 3 a 64 letras, dígitos o . _ @ -", "От 3 до 64 букв, цифр или . _ @ -", "De 3 a 64 letras, dígitos ou . _ @ -"],
    choose_password: ["Choose a password", "设置密码", "Elige una contraseña", "Придумайте пароль", "Escolha uma senha"],
    repeat_password: ["Repeat the password", "再次输入密码", "Repite la contraseña", "Повторите пароль", "Repita a senha"],
    password_rule: ["At least 12 characters. A passphrase of a few words is good.", "至少 12 个字符。几个单词组成的口令就很好。", "Al menos 12 caracteres. Una frase de varias palabras va bien.", "Не менее 12 символов. Хорошо подходит фраза из нескольких слов.", "Pelo menos 12 caracteres. Uma frase de algumas palavras é boa."],
    passwords_differ: ["The two passwords differ.", "两次输入的密码不一致。", "Las dos contraseñas no coinciden.", "Пароли не совпадают.", "As duas senhas são diferentes."],
    create_account: ["Create account", "创建账户", "Crear cuenta", "Создать учётную запись", "Criar conta"],
    link_invalid: ["This link is not valid", "此链接无效", "Este enlace no es válido", "Ссылка недействительна", "Este link não é válido"],
    link_invalid_text: ["It was used, it expired, or it was withdrawn. Ask for a new one.", "它已被使用、已过期或已撤回。请索取新链接。", "Ya se usó, caducó o se retiró. Pide uno nuevo.", "Она использована, истекла или отозвана. Попросите новую.", "Ele já foi usado, expirou ou foi retirado. Peça um novo."],
    not_found: ["Page not found", "未找到页面", "Página no encontrada", "Страница не найдена", "Página não encontrada"],
    back: ["Back to the console", "返回控制台", "Volver a la consola", "Вернуться в консоль", "Voltar ao console"],
    unavailable: ["Temporarily unavailable", "暂时不可用", "No disponible temporalmente", "Временно недоступно", "Indisponível no momento"],
    unavailable_text: ["The database did not answer. Reload in a minute.", "数据库无响应。请一分钟后刷新。", "La base de datos no respondió. Recarga en un minuto.", "База данных не ответила. Обновите страницу через минуту.", "O banco de dados não respondeu. Recarregue em um minuto."],
    unavailable_word: ["unavailable", "不可用", "no disponible", "недоступно", "indisponível"],
    read_only: ["Read-only access", "只读权限", "Acceso de solo lectura", "Доступ только для чтения", "Acesso somente leitura"],
    read_only_text: ["Your role can see this merchant's pages but not change anything. Ask an owner.", "您的角色可以查看此商户的页面，但不能修改。请联系所有者。", "Tu rol puede ver las páginas de este comercio pero no cambiar nada. Pregunta a un propietario.", "Ваша роль позволяет смотреть страницы продавца, но не изменять. Обратитесь к владельцу.", "Seu papel pode ver as páginas deste lojista, mas não alterar nada. Peça a um proprietário."],
    bad_request: ["That request is not valid.", "请求无效。", "La solicitud no es válida.", "Недопустимый запрос.", "A solicitação não é válida."],
    not_done: ["Not done", "未完成", "No se hizo", "Не выполнено", "Não feito"],
    dashboard: ["Dashboard", "概览", "Panel", "Обзор", "Painel"],
    orders: ["Orders", "订单", "Pedidos", "Заказы", "Pedidos"],
    order: ["Order", "订单", "Pedido", "Заказ", "Pedido"],
    orders_word: ["orders", "笔订单", "pedidos", "заказов", "pedidos"],
    payouts: ["Payouts", "付款请求", "Pagos", "Выплаты", "Pagamentos"],
    deposits: ["Deposits", "充值", "Depósitos", "Пополнения", "Depósitos"],
    keys: ["API keys", "API 密钥", "Claves API", "Ключи API", "Chaves de API"],
    webhooks: ["Webhooks", "Webhooks", "Webhooks", "Вебхуки", "Webhooks"],
    wallets: ["Wallets", "收款钱包", "Monederos", "Кошельки", "Carteiras"],
    settings: ["Settings", "设置", "Ajustes", "Настройки", "Configurações"],
    team: ["Team", "团队", "Equipo", "Команда", "Equipe"],
    audit_log: ["Audit log", "审计日志", "Registro de auditoría", "Журнал аудита", "Registro de auditoria"],
    overview: ["Overview", "总览", "Resumen", "Сводка", "Visão geral"],
    merchants: ["Merchants", "商户", "Comercios", "Продавцы", "Lojistas"],
    chains: ["Chains", "区块链", "Cadenas", "Сети", "Redes"],
    rates: ["Rates", "汇率", "Tipos de cambio", "Курсы", "Cotações"],
    operators: ["Operators", "运营者", "Operadores", "Операторы", "Operadores"],
    account: ["Your account", "我的账户", "Tu cuenta", "Ваша учётная запись", "Sua conta"],
    next_steps: ["Next steps", "下一步", "Próximos pasos", "Следующие шаги", "Próximos passos"],
    step_wallet: ["Set a receiving wallet, so that buyers can pay", "设置收款钱包，让买家可以付款", "Configura un monedero de cobro para que los compradores puedan pagar", "Укажите кошелёк для приёма, чтобы покупатели могли платить", "Defina uma carteira de recebimento para que os compradores possam pagar"],
    step_key: ["Create an API key for your shop", "为您的商店创建 API 密钥", "Crea una clave API para tu tienda", "Создайте ключ API для магазина", "Crie uma chave de API para sua loja"],
    step_webhook: ["Add a webhook endpoint to hear about payments", "添加 webhook 端点以接收付款通知", "Añade un endpoint de webhook para enterarte de los pagos", "Добавьте адрес вебхука, чтобы узнавать о платежах", "Adicione um endpoint de webhook para saber dos pagamentos"],
    window: ["Period", "时间范围", "Periodo", "Период", "Período"],
    last_days: ["Last {n} days", "最近 {n} 天", "Últimos {n} días", "Последние {n} дн.", "Últimos {n} dias"],
    orders_by_status: ["Orders by status", "按状态统计订单", "Pedidos por estado", "Заказы по статусу", "Pedidos por status"],
    orders_per_day: ["Orders per day", "每日订单", "Pedidos por día", "Заказы по дням", "Pedidos por dia"],
    volume: ["Received by settled orders", "已结算订单的收款", "Recibido en pedidos liquidados", "Получено по оплаченным заказам", "Recebido em pedidos liquidados"],
    volume_hint: ["Per asset and day the order was created (UTC).", "按资产和订单创建日期（UTC）统计。", "Por activo y día de creación del pedido (UTC).", "По активу и дню создания заказа (UTC).", "Por ativo e dia de criação do pedido (UTC)."],
    show_numbers: ["Show the numbers", "显示数字", "Ver las cifras", "Показать числа", "Mostrar os números"],
    day: ["Day", "日期", "Día", "День", "Dia"],
    nothing_yet: ["Nothing yet.", "暂无内容。", "Nada todavía.", "Пока ничего.", "Nada ainda."],
    search: ["Search", "搜索", "Buscar", "Поиск", "Buscar"],
    search_hint: ["Order number, id, address or transaction", "订单号、ID、地址或交易哈希", "Número de pedido, id, dirección o transacción", "Номер заказа, id, адрес или транзакция", "Número do pedido, id, endereço ou transação"],
    search_results: ["{n} found.", "找到 {n} 条。", "{n} encontrados.", "Найдено: {n}.", "{n} encontrados."],
    status: ["Status", "状态", "Estado", "Статус", "Status"],
    reason: ["Reason", "原因", "Motivo", "Причина", "Motivo"],
    asset: ["Asset", "资产", "Activo", "Актив", "Ativo"],
    assets: ["Assets", "资产", "Activos", "Активы", "Ativos"],
    any: ["Any", "全部", "Cualquiera", "Любой", "Qualquer"],
    from_date: ["From", "起始日期", "Desde", "С", "De"],
    to_date: ["To", "截止日期", "Hasta", "По", "Até"],
    apply: ["Apply", "应用", "Aplicar", "Применить", "Aplicar"],
    clear: ["Clear", "清除", "Limpiar", "Сбросить", "Limpar"],
    export_csv: ["Export CSV", "导出 CSV", "Exportar CSV", "Экспорт CSV", "Exportar CSV"],
    no_orders: ["No orders.", "没有订单。", "No hay pedidos.", "Нет заказов.", "Nenhum pedido."],
    created: ["Created", "创建时间", "Creado", "Создан", "Criado"],
    price: ["Price", "价格", "Precio", "Цена", "Preço"],
    received: ["Received", "已收款", "Recibido", "Получено", "Recebido"],
    unconfirmed: ["Unconfirmed", "未确认", "Sin confirmar", "Не подтверждено", "Não confirmado"],
    first_page: ["First page", "第一页", "Primera página", "Первая страница", "Primeira página"],
    next_page: ["Next page", "下一页", "Página siguiente", "Следующая страница", "Próxima página"],
    field: ["Field", "字段", "Campo", "Поле", "Campo"],
    value: ["Value", "值", "Valor", "Значение", "Valor"],
    order_no: ["Order number", "订单号", "Número de pedido", "Номер заказа", "Número do pedido"],
    amount_due: ["Amount due", "应付金额", "Importe a pagar", "К оплате", "Valor devido"],
    address: ["Address", "地址", "Dirección", "Адрес", "Endereço"],
    addresses: ["Addresses", "地址", "Direcciones", "Адреса", "Endereços"],
    rate: ["Locked rate", "锁定汇率", "Tipo fijado", "Зафиксированный курс", "Cotação travada"],
    description: ["Description", "描述", "Descripción", "Описание", "Descrição"],
    expires: ["Expires", "过期时间", "Caduca", "Истекает", "Expira"],
    watched_until: ["Watched until", "监控至", "Vigilado hasta", "Отслеживается до", "Monitorado até"],
    checkout_page: ["Checkout page", "收银页面", "Página de pago", "Страница оплаты", "Página de pagamento"],
    open: ["Open", "打开", "Abrir", "Открыть", "Abrir"],
    actions: ["Actions", "操作", "Acciones", "Действия", "Ações"],
    note: ["Note (kept in the timeline)", "备注（记录在时间线中）", "Nota (queda en el historial)", "Заметка (сохраняется в истории)", "Nota (fica na linha do tempo)"],
    mark_settled: ["Mark settled", "标记为已结算", "Marcar como liquidado", "Отметить оплаченным", "Marcar como liquidado"],
    mark_invalid: ["Mark invalid", "标记为无效", "Marcar como inválido", "Отметить недействительным", "Marcar como inválido"],
    resolve: ["Accept the underpayment", "接受少付金额", "Aceptar el pago incompleto", "Принять недоплату", "Aceitar o pagamento a menor"],
    cancel_order: ["Cancel the order", "取消订单", "Cancelar el pedido", "Отменить заказ", "Cancelar o pedido"],
    refund: ["Refund", "退款", "Reembolso", "Возврат", "Reembolso"],
    refunds: ["Refunds", "退款", "Reembolsos", "Возвраты", "Reembolsos"],
    amount: ["Amount", "金额", "Importe", "Сумма", "Valor"],
    refund_all: ["all that can be refunded", "可退款的全部金额", "todo lo reembolsable", "всё, что можно вернуть", "tudo o que pode ser reembolsado"],
    destination: ["To address", "收款地址", "A la dirección", "На адрес", "Para o endereço"],
    refund_to_sender: ["the address the payment came from", "付款来源地址", "la dirección de la que vino el pago", "адрес, с которого пришёл платёж", "o endereço de onde veio o pagamento"],
    memo: ["Memo", "备注", "Nota", "Комментарий", "Memorando"],
    request_refund: ["Request the refund", "申请退款", "Solicitar el reembolso", "Запросить возврат", "Solicitar o reembolso"],
    refund_hint: ["The request waits for approval under Payouts; pay it from your wallet and record the transaction there.", "该请求会在“付款请求”中等待批准；请从您的钱包付款并在那里记录交易。", "La solicitud espera aprobación en Pagos; págala desde tu monedero y registra allí la transacción.", "Запрос ждёт одобрения в разделе «Выплаты»; оплатите его из своего кошелька и запишите там транзакцию.", "A solicitação aguarda aprovação em Pagamentos; pague-a da sua carteira e registre lá a transação."],
    repair: ["Payments outside the match window", "超出匹配范围的付款", "Pagos fuera del margen aceptado", "Платежи вне допустимого диапазона", "Pagamentos fora da margem aceita"],
    repair_hint: ["These payments were recorded but not counted (their amount was far from what was owed). Accept them to count them.", "这些付款已记录但未计入（金额与应付差距较大）。接受后才会计入。", "Estos pagos se registraron pero no se contaron (su importe se alejaba de lo debido). Acéptalos para contarlos.", "Эти платежи записаны, но не учтены (сумма сильно отличалась от долга). Примите их, чтобы учесть.", "Estes pagamentos foram registrados mas não contados (o valor estava longe do devido). Aceite-os para contá-los."],
    transaction: ["Transaction", "交易", "Transacción", "Транзакция", "Transação"],
    all_outside: ["All of them", "全部", "Todos", "Все", "Todos"],
    accept_amount: ["Also settle the order with what was received", "同时按实收金额结算订单", "Liquidar también el pedido con lo recibido", "Также закрыть заказ полученной суммой", "Liquidar também o pedido com o recebido"],
    accept_payments: ["Accept the payments", "接受这些付款", "Aceptar los pagos", "Принять платежи", "Aceitar os pagamentos"],
    timeline: ["Timeline", "时间线", "Historial", "История", "Linha do tempo"],
    when: ["When", "时间", "Cuándo", "Когда", "Quando"],
    from: ["From", "从", "De", "Из", "De"],
    to: ["To", "到", "A", "В", "Para"],
    cause: ["Cause", "原因", "Causa", "Причина", "Causa"],
    payments: ["Payments", "付款", "Pagos", "Платежи", "Pagamentos"],
    no_payments: ["No payment seen yet.", "尚未发现付款。", "Aún no se ha visto ningún pago.", "Платежей пока нет.", "Nenhum pagamento visto ainda."],
    detected: ["Detected", "发现时间", "Detectado", "Обнаружен", "Detectado"],
    confirmations: ["Confirmations", "确认数", "Confirmaciones", "Подтверждения", "Confirmações"],
    matching: ["Counted", "计入", "Contado", "Учёт", "Contagem"],
    events: ["Events", "事件", "Eventos", "События", "Eventos"],
    event: ["Event", "事件", "Evento", "Событие", "Evento"],
    data: ["Data", "数据", "Datos", "Данные", "Dados"],
    show: ["Show", "显示", "Mostrar", "Показать", "Mostrar"],
    deliveries: ["Webhook deliveries", "Webhook 投递", "Entregas de webhooks", "Доставки вебхуков", "Entregas de webhooks"],
    no_deliveries: ["No deliveries.", "没有投递记录。", "No hay entregas.", "Доставок нет.", "Nenhuma entrega."],
    url: ["URL", "URL", "URL", "URL", "URL"],
    attempts: ["Attempts", "尝试次数", "Intentos", "Попытки", "Tentativas"],
    response: ["Response", "响应", "Respuesta", "Ответ", "Resposta"],
    request: ["Request", "请求", "Solicitud", "Запрос", "Requisição"],
    next_attempt: ["Next attempt", "下次尝试", "Próximo intento", "Следующая попытка", "Próxima tentativa"],
    redeliver: ["Deliver again", "重新投递", "Entregar de nuevo", "Доставить снова", "Entregar de novo"],
    payouts_hint: ["Coffer does not send payouts yet: approve a request, pay it from your own wallet, then record it as sent with the transaction hash.", "Coffer 目前不会自动付款：请批准请求，从您自己的钱包付款，然后填写交易哈希并标记为已发送。", "Coffer todavía no envía pagos: aprueba la solicitud, págala desde tu propio monedero y regístrala como enviada con el hash de la transacción.", "Coffer пока не отправляет выплаты сам: одобрите запрос, оплатите его из своего кошелька и отметьте как отправленный с хешем транзакции.", "O Coffer ainda não envia pagamentos: aprove a solicitação, pague da sua própria carteira e registre como enviada com o hash da transação."],
    no_payouts: ["No payout requests.", "没有付款请求。", "No hay solicitudes de pago.", "Запросов на выплату нет.", "Nenhuma solicitação de pagamento."],
    kind: ["Kind", "类型", "Tipo", "Тип", "Tipo"],
    deposits_hint: ["Standing addresses of your users (e.g. Pay Protocol recharge users) and what arrived at them.", "您的用户的固定充值地址（例如 Pay Protocol 充值用户）及其收到的款项。", "Direcciones fijas de tus usuarios (p. ej. usuarios de recarga de Pay Protocol) y lo que llegó a ellas.", "Постоянные адреса ваших пользователей (например, пополнения Pay Protocol) и поступления на них.", "Endereços fixos dos seus usuários (ex.: recargas do Pay Protocol) e o que chegou a eles."],
    accounts: ["Accounts", "账户", "Cuentas", "Счета", "Contas"],
    account_word: ["Account", "账户", "Cuenta", "Счёт", "Conta"],
    api_keys: ["API keys", "API 密钥", "Claves API", "Ключи API", "Chaves de API"],
    label: ["Label", "标签", "Etiqueta", "Метка", "Rótulo"],
    scopes: ["Scopes", "权限范围", "Permisos", "Права", "Escopos"],
    revoke: ["Revoke…", "撤销…", "Revocar…", "Отозвать…", "Revogar…"],
    revoke_now: ["Revoke {id} now", "立即撤销 {id}", "Revocar {id} ahora", "Отозвать {id} сейчас", "Revogar {id} agora"],
    new_api_key: ["New API key", "新建 API 密钥", "Nueva clave API", "Новый ключ API", "Nova chave de API"],
    expires_in_days: ["Expires in (days, empty: never)", "有效期（天，留空则永久）", "Caduca en (días, vacío: nunca)", "Срок действия (дней, пусто — бессрочно)", "Expira em (dias, vazio: nunca)"],
    create_key: ["Create the key", "创建密钥", "Crear la clave", "Создать ключ", "Criar a chave"],
    key_created: ["Your new API key", "您的新 API 密钥", "Tu nueva clave API", "Ваш новый ключ API", "Sua nova chave de API"],
    api_key: ["API key", "API 密钥", "Clave API", "Ключ API", "Chave de API"],
    shown_once: ["Copy it now: it is shown only this once and cannot be seen again.", "请立即复制：它只显示这一次，之后无法再查看。", "Cópiala ahora: solo se muestra esta vez y no podrá verse de nuevo.", "Скопируйте сейчас: значение показывается один раз и больше не будет доступно.", "Copie agora: é mostrado só desta vez e não poderá ser visto de novo."],
    copy: ["Copy", "复制", "Copiar", "Копировать", "Copiar"],
    copied: ["Copied", "已复制", "Copiado", "Скопировано", "Copiado"],
    dialect_credentials: ["Credentials for vendor-compatible APIs", "兼容第三方 API 的凭据", "Credenciales de las API compatibles", "Учётные данные совместимых API", "Credenciais das APIs compatíveis"],
    dialect_credentials_hint: ["For plugins written for Aurpay, Pay Protocol or Zaepe.", "用于为 Aurpay、Pay Protocol 或 Zaepe 编写的插件。", "Para plugins escritos para Aurpay, Pay Protocol o Zaepe.", "Для плагинов, написанных для Aurpay, Pay Protocol или Zaepe.", "Para plugins feitos para Aurpay, Pay Protocol ou Zaepe."],
    key_starts: ["Key starts with", "密钥开头", "La clave empieza por", "Ключ начинается с", "A chave começa com"],
    new_dialect_credential: ["New credential", "新建凭据", "Nueva credencial", "Новые учётные данные", "Nova credencial"],
    create_credential: ["Create the credential", "创建凭据", "Crear la credencial", "Создать учётные данные", "Criar a credencial"],
    credential_created: ["Your new credential", "您的新凭据", "Tu nueva credencial", "Ваши новые учётные данные", "Sua nova credencial"],
    secret_key: ["Secret", "密钥", "Secreto", "Секрет", "Segredo"],
    callback_secret: ["Callback secret", "回调密钥", "Secreto de callback", "Секрет колбэков", "Segredo de callback"],
    no_endpoints: ["No webhook endpoints.", "没有 webhook 端点。", "No hay endpoints de webhook.", "Адресов вебхуков нет.", "Nenhum endpoint de webhook."],
    all_events: ["all events", "所有事件", "todos los eventos", "все события", "todos os eventos"],
    all_events_hint: ["None ticked: every event.", "不勾选则接收所有事件。", "Ninguno marcado: todos los eventos.", "Ничего не отмечено — все события.", "Nenhum marcado: todos os eventos."],
    choose_events: ["Only some events…", "仅部分事件…", "Solo algunos eventos…", "Только некоторые события…", "Só alguns eventos…"],
    new_endpoint: ["New endpoint", "新建端点", "Nuevo endpoint", "Новый адрес", "Novo endpoint"],
    create_endpoint: ["Add the endpoint", "添加端点", "Añadir el endpoint", "Добавить адрес", "Adicionar o endpoint"],
    endpoint_created: ["Endpoint added", "端点已添加", "Endpoint añadido", "Адрес добавлен", "Endpoint adicionado"],
    signing_secret: ["Signing secret", "签名密钥", "Secreto de firma", "Секрет подписи", "Segredo de assinatura"],
    endpoint: ["Webhook endpoint", "Webhook 端点", "Endpoint de webhook", "Адрес вебхука", "Endpoint de webhook"],
    failing_since: ["failing since", "失败开始于", "fallando desde", "сбои с", "falhando desde"],
    previous_secret_until: ["The previous secret also signs until", "旧密钥仍可签名至", "El secreto anterior también firma hasta", "Прежний секрет тоже подписывает до", "O segredo anterior também assina até"],
    rotate_secret: ["Rotate the secret", "轮换密钥", "Rotar el secreto", "Сменить секрет", "Trocar o segredo"],
    secret_rotated: ["New signing secret (the old one keeps signing for 24 hours)", "新的签名密钥（旧密钥在 24 小时内仍会签名）", "Nuevo secreto de firma (el anterior sigue firmando 24 horas)", "Новый секрет подписи (прежний действует ещё 24 часа)", "Novo segredo de assinatura (o antigo continua assinando por 24 horas)"],
    enable: ["Enable", "启用", "Activar", "Включить", "Ativar"],
    disable: ["Disable", "停用", "Desactivar", "Отключить", "Desativar"],
    delete: ["Delete…", "删除…", "Eliminar…", "Удалить…", "Excluir…"],
    delete_endpoint: ["Delete this endpoint now", "立即删除此端点", "Eliminar este endpoint ahora", "Удалить этот адрес сейчас", "Excluir este endpoint agora"],
    no_chains_for_wallets: ["No chain is configured on this server yet: ask the operator.", "此服务器尚未配置任何区块链：请联系运营者。", "Este servidor aún no tiene cadenas configuradas: pregunta al operador.", "На сервере ещё не настроено ни одной сети: обратитесь к оператору.", "Este servidor ainda não tem redes configuradas: fale com o operador."],
    check_addresses: ["Check these addresses", "核对这些地址", "Comprueba estas direcciones", "Проверьте эти адреса", "Confira estes endereços"],
    check_addresses_hint: ["Your wallet app must show the same first receiving addresses. If they differ, do not save: payments would go where you cannot spend them.", "您的钱包应用必须显示相同的前几个收款地址。如果不同，请不要保存：否则付款会进入您无法使用的地址。", "Tu app de monedero debe mostrar las mismas primeras direcciones de cobro. Si no coinciden, no guardes: los pagos irían a donde no puedes gastarlos.", "Ваше приложение-кошелёк должно показывать те же первые адреса. Если они отличаются, не сохраняйте: платежи уйдут туда, где вы не сможете их потратить.", "Seu app de carteira deve mostrar os mesmos primeiros endereços. Se forem diferentes, não salve: os pagamentos iriam para onde você não pode gastá-los."],
    chain: ["Chain", "区块链", "Cadena", "Сеть", "Rede"],
    path: ["Derivation path", "派生路径", "Ruta de derivación", "Путь деривации", "Caminho de derivação"],
    save_wallet: ["They match: save this wallet", "一致：保存此钱包", "Coinciden: guardar este monedero", "Совпадают: сохранить кошелёк", "Conferem: salvar esta carteira"],
    cancel: ["Cancel", "取消", "Cancelar", "Отмена", "Cancelar"],
    next_index: ["Next address index", "下一个地址序号", "Siguiente índice de dirección", "Следующий индекс адреса", "Próximo índice de endereço"],
    updated: ["updated", "更新于", "actualizado", "обновлён", "atualizado"],
    first_addresses: ["First addresses", "前几个地址", "Primeras direcciones", "Первые адреса", "Primeiros endereços"],
    gap_warning: ["{n} addresses in a row from index {start} were given out and not paid: many wallet apps stop looking after 20. Raise your wallet's gap limit, or payments to later addresses will not show in it.", "从序号 {start} 起连续 {n} 个地址已分配但未收款：许多钱包应用在 20 个之后就不再查找。请提高钱包的间隔限制，否则后续地址的付款不会显示。", "Se entregaron {n} direcciones seguidas desde el índice {start} sin pagos: muchas apps de monedero dejan de buscar tras 20. Aumenta el gap limit de tu monedero o los pagos a direcciones posteriores no aparecerán.", "Выдано {n} адресов подряд начиная с индекса {start} без оплаты: многие кошельки перестают искать после 20. Увеличьте gap limit кошелька, иначе платежи на дальнейшие адреса не будут видны.", "{n} endereços seguidos a partir do índice {start} foram entregues sem pagamento: muitos apps de carteira param de procurar após 20. Aumente o gap limit da carteira ou pagamentos a endereços posteriores não aparecerão nela."],
    set_wallet: ["Set a wallet", "设置钱包", "Configurar un monedero", "Указать кошелёк", "Definir uma carteira"],
    xpub: ["Account xpub or descriptor", "账户 xpub 或描述符", "xpub de la cuenta o descriptor", "xpub счёта или дескриптор", "xpub da conta ou descritor"],
    xpub_hint: ["Public key only: for EVM chains the key at m/44'/60'/0', for TRON m/44'/195'/0'; Coffer never needs a private key.", "仅需公钥：EVM 链使用 m/44'/60'/0' 的密钥，TRON 使用 m/44'/195'/0'；Coffer 从不需要私钥。", "Solo la clave pública: en cadenas EVM la clave en m/44'/60'/0', en TRON m/44'/195'/0'; Coffer nunca necesita una clave privada.", "Только открытый ключ: для сетей EVM — ключ по пути m/44'/60'/0', для TRON — m/44'/195'/0'; Coffer никогда не нужен закрытый ключ.", "Só a chave pública: em redes EVM a chave em m/44'/60'/0', em TRON m/44'/195'/0'; o Coffer nunca precisa de chave privada."],
    preview_addresses: ["Show the first addresses", "显示前几个地址", "Mostrar las primeras direcciones", "Показать первые адреса", "Mostrar os primeiros endereços"],
    branding: ["Checkout look", "收银页面外观", "Aspecto de la página de pago", "Вид страницы оплаты", "Aparência da página de pagamento"],
    branding_hint: ["What buyers see on the payment page.", "买家在付款页面上看到的内容。", "Lo que ven los compradores en la página de pago.", "То, что видят покупатели на странице оплаты.", "O que os compradores veem na página de pagamento."],
    display_name: ["Name shown to buyers", "向买家显示的名称", "Nombre visible para los compradores", "Имя для покупателей", "Nome exibido aos compradores"],
    brand_color: ["Brand colour", "品牌颜色", "Color de marca", "Фирменный цвет", "Cor da marca"],
    current_logo: ["Current logo", "当前标志", "Logotipo actual", "Текущий логотип", "Logotipo atual"],
    remove_logo: ["Remove the logo", "移除标志", "Quitar el logotipo", "Удалить логотип", "Remover o logotipo"],
    logo: ["Logo", "标志", "Logotipo", "Логотип", "Logotipo"],
    logo_hint: ["PNG, JPEG, WebP, GIF or SVG, at most 24 KiB.", "PNG、JPEG、WebP、GIF 或 SVG，最大 24 KiB。", "PNG, JPEG, WebP, GIF o SVG, 24 KiB como máximo.", "PNG, JPEG, WebP, GIF или SVG, не более 24 КиБ.", "PNG, JPEG, WebP, GIF ou SVG, no máximo 24 KiB."],
    save: ["Save", "保存", "Guardar", "Сохранить", "Salvar"],
    confirmations_hint: ["Confirmations a payment needs on each chain before an order is paid (empty: the chain's default). Bitcoin takes 0, 1, 2 or 6. New orders only.", "每条链上付款需要的确认数（留空：使用链的默认值）。比特币可选 0、1、2 或 6。仅影响新订单。", "Confirmaciones que necesita un pago en cada cadena (vacío: las de la cadena). Bitcoin admite 0, 1, 2 o 6. Solo pedidos nuevos.", "Сколько подтверждений нужно платежу в каждой сети (пусто — по умолчанию сети). Для Bitcoin: 0, 1, 2 или 6. Только для новых заказов.", "Confirmações que um pagamento precisa em cada rede (vazio: o padrão da rede). Bitcoin aceita 0, 1, 2 ou 6. Só pedidos novos."],
    default_word: ["default", "默认", "por defecto", "по умолчанию", "padrão"],
    underpayment: ["Underpayment tolerance", "少付容差", "Tolerancia de pago incompleto", "Допустимая недоплата", "Tolerância a pagamento menor"],
    underpayment_hint: ["A payment this many percent short of the amount due still settles the order. New orders only.", "付款低于应付金额不超过此百分比时，订单仍按已结算处理。仅影响新订单。", "Un pago que se quede corto en este porcentaje todavía liquida el pedido. Solo pedidos nuevos.", "Платёж, меньший суммы на столько процентов, всё равно закрывает заказ. Только для новых заказов.", "Um pagamento até esta porcentagem abaixo do devido ainda liquida o pedido. Só pedidos novos."],
    tolerance_percent: ["Percent (0 to 50)", "百分比（0 到 50）", "Porcentaje (0 a 50)", "Процент (от 0 до 50)", "Porcentagem (0 a 50)"],
    user: ["User", "用户", "Usuario", "Пользователь", "Usuário"],
    role: ["Role", "角色", "Rol", "Роль", "Papel"],
    invite_someone: ["Invite someone", "邀请成员", "Invitar a alguien", "Пригласить", "Convidar alguém"],
    staff_hint: ["sees everything, changes nothing", "可查看全部，不能修改", "ve todo, no cambia nada", "видит всё, ничего не меняет", "vê tudo, não altera nada"],
    owner_hint: ["changes everything, including the team", "可修改全部，包括团队", "cambia todo, incluido el equipo", "меняет всё, включая команду", "altera tudo, inclusive a equipe"],
    create_invitation: ["Create an invitation link", "创建邀请链接", "Crear un enlace de invitación", "Создать ссылку-приглашение", "Criar um link de convite"],
    invitation_created: ["Invitation link", "邀请链接", "Enlace de invitación", "Ссылка-приглашение", "Link de convite"],
    invitation_link: ["Link", "链接", "Enlace", "Ссылка", "Link"],
    invitation_hint: ["Send it to the person you invite over a private channel. It works once, for 7 days, and is shown only now.", "请通过私密渠道发送给受邀人。它只能使用一次，有效期 7 天，且只在此刻显示。", "Envíalo a la persona invitada por un canal privado. Sirve una vez, durante 7 días, y solo se muestra ahora.", "Отправьте её приглашённому по закрытому каналу. Она действует один раз, 7 дней, и показывается только сейчас.", "Envie-o à pessoa convidada por um canal privado. Funciona uma vez, por 7 dias, e só é mostrado agora."],
    open_invitations: ["Open invitations", "未使用的邀请", "Invitaciones abiertas", "Открытые приглашения", "Convites em aberto"],
    withdraw: ["Withdraw", "撤回", "Retirar", "Отозвать", "Retirar"],
    setup_link: ["setup link", "设置链接", "enlace de configuración", "ссылка настройки", "link de configuração"],
    invite_operator: ["Invite an operator", "邀请运营者", "Invitar a un operador", "Пригласить оператора", "Convidar um operador"],
    operator_hint: ["Operators run the server and can open every merchant's pages.", "运营者管理服务器，可以打开所有商户的页面。", "Los operadores gestionan el servidor y pueden abrir las páginas de todos los comercios.", "Операторы управляют сервером и могут открывать страницы всех продавцов.", "Operadores administram o servidor e podem abrir as páginas de todos os lojistas."],
    two_step_on: ["Two-step sign-in is on", "两步验证已开启", "El inicio en dos pasos está activado", "Двухэтапный вход включён", "O login em duas etapas está ativado"],
    two_step_on_short: ["on", "已开启", "activado", "вкл.", "ativado"],
    two_step_off: ["Two-step sign-in is off: a password alone opens your account.", "两步验证未开启：仅凭密码即可登录您的账户。", "El inicio en dos pasos está desactivado: basta la contraseña para entrar en tu cuenta.", "Двухэтапный вход выключен: для входа достаточно пароля.", "O login em duas etapas está desativado: só a senha abre sua conta."],
    set_up_two_step: ["Set up two-step sign-in", "设置两步验证", "Configurar el inicio en dos pasos", "Настроить двухэтапный вход", "Configurar o login em duas etapas"],
    scan_hint: ["Scan this code with an authenticator app (or type the secret in), then enter the code it shows.", "请用验证器应用扫描此二维码（或手动输入密钥），然后输入应用显示的验证码。", "Escanea este código con una app de autenticación (o escribe el secreto) y luego introduce el código que muestra.", "Отсканируйте код приложением-аутентификатором (или введите секрет вручную), затем введите показанный код.", "Escaneie este código com um app autenticador (ou digite o segredo) e depois digite o código que ele mostra."],
    qr_label: ["QR code for the authenticator app", "验证器应用的二维码", "Código QR para la app de autenticación", "QR-код для приложения-аутентификатора", "Código QR para o app autenticador"],
    code_from_app: ["Code from the app", "应用中的验证码", "Código de la app", "Код из приложения", "Código do app"],
    turn_on: ["Turn on", "开启", "Activar", "Включить", "Ativar"],
    turn_off: ["Turn off", "关闭", "Desactivar", "Выключить", "Desativar"],
    change_password: ["Change password", "修改密码", "Cambiar la contraseña", "Сменить пароль", "Alterar a senha"],
    current_password: ["Current password", "当前密码", "Contraseña actual", "Текущий пароль", "Senha atual"],
    new_password: ["New password", "新密码", "Nueva contraseña", "Новый пароль", "Nova senha"],
    sessions: ["Where you are signed in", "已登录的设备", "Dónde has iniciado sesión", "Где выполнен вход", "Onde você está conectado"],
    client: ["Client", "客户端", "Cliente", "Клиент", "Cliente"],
    signed_in_at: ["Signed in", "登录时间", "Inicio de sesión", "Вход", "Entrada"],
    last_seen: ["Last seen", "最近活动", "Última actividad", "Последняя активность", "Última atividade"],
    this_session: ["this one", "当前", "esta", "текущий", "esta"],
    checklist: ["First-run checklist", "首次运行清单", "Lista de puesta en marcha", "Чек-лист первого запуска", "Lista de primeira execução"],
    no_chain: ["No chain is configured: buyers have nothing to pay with.", "尚未配置任何区块链：买家无法付款。", "No hay ninguna cadena configurada: los compradores no tienen con qué pagar.", "Не настроено ни одной сети: покупателям нечем платить.", "Nenhuma rede configurada: os compradores não têm com o que pagar."],
    no_chain_todo: ["Add a chain to coffer.toml (see docs/chains-evm.md or docs/chains-bitcoin.md) and restart Coffer:", "在 coffer.toml 中添加区块链（参见 docs/chains-evm.md 或 docs/chains-bitcoin.md）并重启 Coffer：", "Añade una cadena a coffer.toml (ver docs/chains-evm.md o docs/chains-bitcoin.md) y reinicia Coffer:", "Добавьте сеть в coffer.toml (см. docs/chains-evm.md или docs/chains-bitcoin.md) и перезапустите Coffer:", "Adicione uma rede ao coffer.toml (veja docs/chains-evm.md ou docs/chains-bitcoin.md) e reinicie o Coffer:"],
    chains_configured: ["{n} chain(s) configured.", "已配置 {n} 条区块链。", "{n} cadena(s) configurada(s).", "Настроено сетей: {n}.", "{n} rede(s) configurada(s)."],
    chain_without_node: ["Chain {chain} has no node: payments on it are not seen.", "区块链 {chain} 没有节点：无法发现其上的付款。", "La cadena {chain} no tiene nodo: sus pagos no se ven.", "У сети {chain} нет узла: платежи в ней не видны.", "A rede {chain} não tem nó: pagamentos nela não são vistos."],
    chain_without_node_todo: ["Give it an rpc URL in coffer.toml and restart Coffer.", "在 coffer.toml 中为其设置 rpc 地址并重启 Coffer。", "Dale una URL rpc en coffer.toml y reinicia Coffer.", "Укажите для неё rpc в coffer.toml и перезапустите Coffer.", "Dê a ela uma URL rpc no coffer.toml e reinicie o Coffer."],
    no_merchant: ["No merchant yet.", "尚无商户。", "Aún no hay comercios.", "Продавцов пока нет.", "Nenhum lojista ainda."],
    merchants_exist: ["{n} merchant(s).", "{n} 个商户。", "{n} comercio(s).", "Продавцов: {n}.", "{n} lojista(s)."],
    create_merchant: ["Create a merchant", "创建商户", "Crear un comercio", "Создать продавца", "Criar um lojista"],
    every_merchant_has_wallet: ["Every merchant has a receiving wallet.", "所有商户都已设置收款钱包。", "Todos los comercios tienen monedero de cobro.", "У всех продавцов есть кошелёк для приёма.", "Todos os lojistas têm carteira de recebimento."],
    merchant_without_wallet: ["{merchant} has no receiving wallet: its buyers cannot pay.", "{merchant} 没有收款钱包：其买家无法付款。", "{merchant} no tiene monedero de cobro: sus compradores no pueden pagar.", "У {merchant} нет кошелька для приёма: покупатели не могут платить.", "{merchant} não tem carteira de recebimento: seus compradores não podem pagar."],
    rates_fixed_only: ["Prices come only from the fixed table in coffer.toml.", "价格仅来自 coffer.toml 中的固定汇率表。", "Los precios solo vienen de la tabla fija de coffer.toml.", "Цены берутся только из фиксированной таблицы в coffer.toml.", "Os preços vêm só da tabela fixa do coffer.toml."],
    rates_from_market: ["Prices come from market sources.", "价格来自市场数据源。", "Los precios vienen de fuentes de mercado.", "Цены берутся с рыночных источников.", "Os preços vêm de fontes de mercado."],
    rates_fixed_todo: ["Fine for stablecoins priced in their own currency; for other coins add market sources under [rates] sources in coffer.toml (see docs/rates.md).", "对以自身货币计价的稳定币没有问题；其他币种请在 coffer.toml 的 [rates] sources 中添加市场数据源（参见 docs/rates.md）。", "Sirve para stablecoins cotizadas en su propia moneda; para otras monedas añade fuentes de mercado en [rates] sources de coffer.toml (ver docs/rates.md).", "Годится для стейблкоинов в их собственной валюте; для других монет добавьте рыночные источники в [rates] sources в coffer.toml (см. docs/rates.md).", "Serve para stablecoins cotadas na própria moeda; para outras moedas adicione fontes de mercado em [rates] sources no coffer.toml (veja docs/rates.md)."],
    rates_quorum: ["Enough fresh sources to price new orders.", "有足够的新鲜数据源为新订单定价。", "Hay suficientes fuentes recientes para poner precio a pedidos nuevos.", "Достаточно свежих источников для цен новых заказов.", "Fontes recentes suficientes para precificar pedidos novos."],
    operator_two_step: ["Two-step sign-in on your operator account.", "您的运营者账户已开启两步验证。", "Inicio de sesión en dos pasos en tu cuenta de operador.", "Двухэтапный вход для вашей учётной записи оператора.", "Login em duas etapas na sua conta de operador."],
    server: ["Server", "服务器", "Servidor", "Сервер", "Servidor"],
    version: ["Version", "版本", "Versión", "Версия", "Versão"],
    database: ["Database", "数据库", "Base de datos", "База данных", "Banco de dados"],
    listening_on: ["Listening on", "监听地址", "Escucha en", "Адрес прослушивания", "Escutando em"],
    public_url: ["Public URL", "公开地址", "URL pública", "Публичный URL", "URL pública"],
    started: ["Started", "启动时间", "Arrancó", "Запущен", "Iniciado"],
    webhook_backlog: ["Webhook backlog", "Webhook 积压", "Cola de webhooks", "Очередь вебхуков", "Fila de webhooks"],
    webhook_backlog_hint: ["Deliveries waiting for an attempt or retrying, events not yet turned into deliveries, and endpoints that keep failing.", "等待尝试或重试的投递、尚未转为投递的事件，以及持续失败的端点。", "Entregas esperando intento o reintentando, eventos aún no convertidos en entregas y endpoints que siguen fallando.", "Доставки в ожидании попытки или повтора, события, ещё не ставшие доставками, и постоянно сбоящие адреса.", "Entregas aguardando tentativa ou nova tentativa, eventos ainda não transformados em entregas e endpoints que continuam falhando."],
    pending_deliveries: ["Pending deliveries", "待投递", "Entregas pendientes", "Ожидающие доставки", "Entregas pendentes"],
    undispatched_events: ["Events not dispatched", "未分发事件", "Eventos sin despachar", "Неразосланные события", "Eventos não despachados"],
    failing_endpoints: ["Failing endpoints", "失败的端点", "Endpoints con fallos", "Сбоящие адреса", "Endpoints com falha"],
    oldest_due: ["Oldest due", "最早到期", "Más antigua pendiente", "Самая старая", "Mais antiga pendente"],
    oldest_undispatched: ["Oldest undispatched", "最早未分发", "Más antiguo sin despachar", "Самое старое неразосланное", "Mais antigo não despachado"],
    name: ["Name", "名称", "Nombre", "Название", "Nome"],
    invite_owner: ["Invite an owner", "邀请所有者", "Invitar a un propietario", "Пригласить владельца", "Convidar um proprietário"],
    resume: ["Resume", "恢复", "Reanudar", "Возобновить", "Retomar"],
    suspend: ["Suspend…", "暂停…", "Suspender…", "Приостановить…", "Suspender…"],
    suspend_now: ["Suspend this merchant now", "立即暂停此商户", "Suspender este comercio ahora", "Приостановить продавца сейчас", "Suspender este lojista agora"],
    suspend_hint: ["Its API keys, credentials and console users stop working; checkouts of its open orders go on.", "其 API 密钥、凭据和控制台用户将停止工作；未完成订单的收银页面继续有效。", "Sus claves API, credenciales y usuarios de la consola dejan de funcionar; las páginas de pago de sus pedidos abiertos siguen.", "Его ключи API, учётные данные и пользователи консоли перестают работать; оплата открытых заказов продолжается.", "Suas chaves de API, credenciais e usuários do console param de funcionar; as páginas de pagamento dos pedidos em aberto continuam."],
    merchant_created: ["Merchant {name} created. Its first API key:", "商户 {name} 已创建。其第一个 API 密钥：", "Comercio {name} creado. Su primera clave API:", "Продавец {name} создан. Его первый ключ API:", "Lojista {name} criado. Sua primeira chave de API:"],
    open_console: ["Open its pages", "打开其页面", "Abrir sus páginas", "Открыть его страницы", "Abrir suas páginas"],
    source: ["Source", "来源", "Fuente", "Источник", "Fonte"],
    age: ["Age", "时长", "Antigüedad", "Возраст", "Idade"],
    errors: ["Errors", "错误", "Errores", "Ошибки", "Erros"],
    last_error: ["Last error", "最近错误", "Último error", "Последняя ошибка", "Último erro"],
    prices_now: ["Prices now", "当前价格", "Precios ahora", "Цены сейчас", "Preços agora"],
    subject: ["Subject", "对象", "Objeto", "Объект", "Objeto"],
    action: ["Action", "操作", "Acción", "Действие", "Ação"],
    detail: ["Detail", "详情", "Detalle", "Подробности", "Detalhe"],
}

/// Machine words (statuses, reasons, causes, roles…) in each language.
static WORDS: &[(&str, [&str; 5])] = &[
    (
        "pending",
        ["pending", "待支付", "pendiente", "ожидает", "pendente"],
    ),
    (
        "processing",
        [
            "processing",
            "确认中",
            "procesando",
            "подтверждается",
            "processando",
        ],
    ),
    (
        "settled",
        ["settled", "已结算", "liquidado", "оплачен", "liquidado"],
    ),
    (
        "expired",
        ["expired", "已过期", "caducado", "истёк", "expirado"],
    ),
    (
        "invalid",
        ["invalid", "无效", "inválido", "недействителен", "inválido"],
    ),
    (
        "refunded",
        [
            "refunded",
            "已退款",
            "reembolsado",
            "возвращён",
            "reembolsado",
        ],
    ),
    ("none", ["—", "—", "—", "—", "—"]),
    (
        "paid_partial",
        [
            "paid partly",
            "部分支付",
            "pago parcial",
            "оплачен частично",
            "pago parcial",
        ],
    ),
    (
        "paid_over",
        [
            "paid over",
            "超额支付",
            "pago de más",
            "переплата",
            "pago a mais",
        ],
    ),
    (
        "paid_late",
        [
            "paid late",
            "逾期支付",
            "pago tarde",
            "оплачен поздно",
            "pago atrasado",
        ],
    ),
    (
        "marked",
        ["by hand", "手动标记", "a mano", "вручную", "manual"],
    ),
    (
        "resolved",
        [
            "underpayment accepted",
            "已接受少付",
            "pago incompleto aceptado",
            "недоплата принята",
            "pagamento menor aceito",
        ],
    ),
    (
        "reversed",
        ["reversed", "已撤销", "revertido", "отменён", "revertido"],
    ),
    ("created", ["created", "创建", "creado", "создан", "criado"]),
    (
        "payment",
        ["payment", "付款", "pago", "платёж", "pagamento"],
    ),
    (
        "expiry",
        ["expiry", "过期", "caducidad", "истечение", "expiração"],
    ),
    (
        "mark_settled",
        [
            "marked settled",
            "标记为已结算",
            "marcado liquidado",
            "отмечен оплаченным",
            "marcado liquidado",
        ],
    ),
    (
        "mark_invalid",
        [
            "marked invalid",
            "标记为无效",
            "marcado inválido",
            "отмечен недействительным",
            "marcado inválido",
        ],
    ),
    (
        "cancel",
        ["cancelled", "已取消", "cancelado", "отменён", "cancelado"],
    ),
    (
        "resolve",
        [
            "underpayment accepted",
            "已接受少付",
            "pago incompleto aceptado",
            "недоплата принята",
            "pagamento menor aceito",
        ],
    ),
    (
        "refund",
        ["refund", "退款", "reembolso", "возврат", "reembolso"],
    ),
    (
        "withdrawal",
        ["withdrawal", "提现", "retirada", "вывод", "saque"],
    ),
    (
        "unconfirmed",
        [
            "unconfirmed",
            "未确认",
            "sin confirmar",
            "не подтверждён",
            "não confirmado",
        ],
    ),
    (
        "confirmed",
        [
            "confirmed",
            "已确认",
            "confirmado",
            "подтверждён",
            "confirmado",
        ],
    ),
    (
        "matched",
        ["counted", "已计入", "contado", "учтён", "contado"],
    ),
    (
        "outside_window",
        [
            "outside the window",
            "超出范围",
            "fuera del margen",
            "вне диапазона",
            "fora da margem",
        ],
    ),
    (
        "wrong_asset",
        [
            "wrong asset",
            "资产错误",
            "activo equivocado",
            "не тот актив",
            "ativo errado",
        ],
    ),
    (
        "unexpected",
        [
            "unexpected",
            "意外付款",
            "inesperado",
            "неожиданный",
            "inesperado",
        ],
    ),
    (
        "accepted",
        ["accepted", "已接受", "aceptado", "принят", "aceito"],
    ),
    (
        "requested",
        [
            "requested",
            "已申请",
            "solicitado",
            "запрошен",
            "solicitado",
        ],
    ),
    (
        "approved",
        ["approved", "已批准", "aprobado", "одобрен", "aprovado"],
    ),
    (
        "rejected",
        ["rejected", "已拒绝", "rechazado", "отклонён", "rejeitado"],
    ),
    (
        "sent",
        ["sent", "已发送", "enviado", "отправлен", "enviado"],
    ),
    (
        "completed",
        ["completed", "已完成", "completado", "завершён", "concluído"],
    ),
    ("failed", ["failed", "失败", "fallido", "сбой", "falhou"]),
    (
        "succeeded",
        ["delivered", "已送达", "entregado", "доставлен", "entregue"],
    ),
    ("active", ["active", "有效", "activo", "активен", "ativo"]),
    (
        "revoked",
        ["revoked", "已撤销", "revocado", "отозван", "revogado"],
    ),
    (
        "disabled",
        [
            "disabled",
            "已停用",
            "desactivado",
            "отключён",
            "desativado",
        ],
    ),
    (
        "operator",
        ["operator", "运营者", "operador", "оператор", "operador"],
    ),
    (
        "owner",
        ["owner", "所有者", "propietario", "владелец", "proprietário"],
    ),
    (
        "staff",
        ["staff", "员工", "personal", "сотрудник", "equipe"],
    ),
];

/// The buttons moving a payout request, by the status they move it to.
static MOVES: &[(&str, [&str; 5])] = &[
    (
        "approved",
        ["Approve", "批准", "Aprobar", "Одобрить", "Aprovar"],
    ),
    (
        "rejected",
        ["Reject", "拒绝", "Rechazar", "Отклонить", "Rejeitar"],
    ),
    (
        "sent",
        [
            "Record as sent",
            "记录为已发送",
            "Registrar como enviado",
            "Отметить отправленным",
            "Registrar como enviado",
        ],
    ),
    (
        "completed",
        [
            "Record as completed",
            "记录为已完成",
            "Registrar como completado",
            "Отметить завершённым",
            "Registrar como concluído",
        ],
    ),
    (
        "failed",
        [
            "Record as failed",
            "记录为失败",
            "Registrar como fallido",
            "Отметить неудачным",
            "Registrar como falho",
        ],
    ),
];

/// The notices after an action (the first is the default).
static NOTICES: &[(&str, [&str; 5])] = &[
    (
        "saved",
        ["Saved.", "已保存。", "Guardado.", "Сохранено.", "Salvo."],
    ),
    (
        "revoked",
        [
            "Revoked.",
            "已撤销。",
            "Revocado.",
            "Отозвано.",
            "Revogado.",
        ],
    ),
    (
        "deleted",
        [
            "Deleted.",
            "已删除。",
            "Eliminado.",
            "Удалено.",
            "Excluído.",
        ],
    ),
    (
        "withdrawn",
        [
            "Invitation withdrawn.",
            "邀请已撤回。",
            "Invitación retirada.",
            "Приглашение отозвано.",
            "Convite retirado.",
        ],
    ),
    (
        "redelivered",
        [
            "Delivery queued again.",
            "已重新排队投递。",
            "Entrega puesta de nuevo en cola.",
            "Доставка снова поставлена в очередь.",
            "Entrega colocada de novo na fila.",
        ],
    ),
    (
        "refund_requested",
        [
            "Refund requested: approve it under Payouts.",
            "已申请退款：请在“付款请求”中批准。",
            "Reembolso solicitado: apruébalo en Pagos.",
            "Возврат запрошен: одобрите его в разделе «Выплаты».",
            "Reembolso solicitado: aprove-o em Pagamentos.",
        ],
    ),
    (
        "password_changed",
        [
            "Password changed. Your other sessions were signed out.",
            "密码已修改。您的其他会话已退出。",
            "Contraseña cambiada. Tus otras sesiones se cerraron.",
            "Пароль изменён. Другие сеансы завершены.",
            "Senha alterada. Suas outras sessões foram encerradas.",
        ],
    ),
    (
        "totp_on",
        [
            "Two-step sign-in is on.",
            "两步验证已开启。",
            "El inicio en dos pasos está activado.",
            "Двухэтапный вход включён.",
            "O login em duas etapas está ativado.",
        ],
    ),
    (
        "totp_off",
        [
            "Two-step sign-in is off.",
            "两步验证已关闭。",
            "El inicio en dos pasos está desactivado.",
            "Двухэтапный вход выключен.",
            "O login em duas etapas está desativado.",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{…}` placeholders of a string.
    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn every_language_keeps_the_placeholders_and_says_something() {
        let en = all_fields(&EN);
        for lang in Lang::ALL {
            let t = texts(lang);
            assert_eq!(
                t.lang,
                Lang::ALL.iter().position(|l| *l == lang).unwrap_or(9)
            );
            for ((name, theirs), (_, ours)) in all_fields(t).into_iter().zip(&en) {
                assert!(!theirs.trim().is_empty(), "{}: {name} is empty", lang.tag());
                assert_eq!(
                    placeholders(theirs),
                    placeholders(ours),
                    "{}: {name} = {theirs:?}",
                    lang.tag()
                );
            }
        }
        for table in [WORDS, MOVES, NOTICES] {
            for (word, tr) in table {
                assert!(tr.iter().all(|s| !s.is_empty()), "{word}");
            }
        }
    }

    #[test]
    fn words_cover_every_status_reason_and_cause() {
        use coffer_core::{Cause, OrderStatus, PayoutStatus, StatusReason};
        let known = |w: &str| WORDS.iter().any(|(x, _)| *x == w);
        for s in OrderStatus::ALL {
            assert!(known(s.as_str()), "{s}");
        }
        for r in StatusReason::ALL {
            assert!(known(r.as_str()), "{r}");
        }
        for c in Cause::ALL {
            assert!(known(c.as_str()), "{}", c.as_str());
        }
        for p in PayoutStatus::ALL {
            assert!(known(p.as_str()), "{}", p.as_str());
        }
        assert_eq!(ES.word("settled"), "liquidado");
        assert_eq!(RU.word("unknown-word"), "unknown-word");
        assert_eq!(ZH_CN.ok_message("nope"), "已保存。");
    }
}
