"""Words on synthetic screens: labels per language, and what else people call them.

Every screen draws its labels from one language (English most often), so a
screen reads like a real localized application; CJK, Cyrillic and accented
labels exercise OCR and matching beyond ASCII.
"""

from __future__ import annotations

LANGUAGES = ("en", "de", "fr", "es", "ru", "zh")
LANGUAGE_WEIGHTS = (0.55, 0.08, 0.08, 0.08, 0.1, 0.11)

VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "button": ("Save", "Cancel", "OK", "Apply", "Delete", "Open", "Close", "Next", "Back", "Submit", "Sign in",
                   "Sign up", "Continue", "Search", "Send", "Edit", "Share", "Download", "Print", "Export", "Import",
                   "Refresh", "Help", "Done", "Add", "Remove", "Create", "Reset", "Update", "Confirm", "Settings"),
        "field": ("Email", "Password", "Username", "First name", "Last name", "Phone", "Address", "City", "Company",
                  "Website", "Title", "Description", "Postal code", "Country", "Comment"),
        "check": ("Remember me", "I agree to the terms", "Subscribe to newsletter", "Show hidden files",
                  "Enable notifications", "Auto-save", "Dark mode", "Send usage statistics", "Wi-Fi", "Bluetooth",
                  "Airplane mode", "Location access", "Sync contacts", "Open at login", "Spell check"),
        "option": ("Small", "Medium", "Large", "Daily", "Weekly", "Monthly", "Public", "Private", "Portrait",
                   "Landscape", "Automatic", "Manual"),
        "menu": ("File", "Edit", "View", "Insert", "Format", "Tools", "Window", "Help", "Go", "Bookmarks"),
        "menu_item": ("New", "Open…", "Save As…", "Recent Files", "Preferences", "Quit", "Undo", "Redo", "Cut",
                      "Copy", "Paste", "Select All", "Find…", "Zoom In", "Zoom Out", "Full Screen"),
        "tab": ("General", "Appearance", "Privacy", "Advanced", "Network", "Accounts", "Security", "Updates",
                "Overview", "Details", "History", "Files", "Photos", "Music", "Videos"),
        "item": ("Documents", "Downloads", "Pictures", "Music", "Desktop", "Projects", "Invoices 2024",
                 "Meeting notes", "Travel plans", "Budget.xlsx", "Report final.pdf", "Holiday photos",
                 "Alice Johnson", "Bob Smith", "Carlos Diaz", "Dana Lee", "Inbox", "Drafts", "Archive", "Spam"),
        "link": ("Home", "About", "Pricing", "Blog", "Contact", "Docs", "Careers", "Support", "Privacy policy",
                 "Terms of service", "Forgot password?", "Learn more", "Read the guide", "Status", "Community"),
        "slider": ("Volume", "Brightness", "Font size", "Zoom", "Speed", "Opacity"),
        "title": ("Account settings", "New message", "Preferences", "Create account", "Checkout", "Welcome back",
                  "Export options", "Print", "Connect to server", "Edit profile"),
        "nav": ("Home", "Search", "Library", "Profile", "Settings", "Chats", "Calls", "Explore", "Inbox"),
    },
    "de": {
        "button": ("Speichern", "Abbrechen", "Übernehmen", "Löschen", "Öffnen", "Schließen", "Weiter", "Zurück",
                   "Senden", "Anmelden", "Suchen", "Bearbeiten", "Drucken", "Hinzufügen", "Fertig"),
        "field": ("E-Mail", "Passwort", "Benutzername", "Vorname", "Nachname", "Straße", "Postleitzahl", "Ort"),
        "check": ("Angemeldet bleiben", "Ich stimme den AGB zu", "Benachrichtigungen", "Versteckte Dateien zeigen",
                  "Automatisch speichern", "Dunkler Modus"),
        "option": ("Klein", "Mittel", "Groß", "Täglich", "Wöchentlich", "Öffentlich", "Privat"),
        "menu": ("Datei", "Bearbeiten", "Ansicht", "Einfügen", "Extras", "Hilfe"),
        "menu_item": ("Neu", "Öffnen…", "Speichern unter…", "Einstellungen", "Beenden", "Rückgängig", "Kopieren"),
        "tab": ("Allgemein", "Darstellung", "Datenschutz", "Erweitert", "Netzwerk", "Konten", "Übersicht"),
        "item": ("Dokumente", "Bilder", "Musik", "Schreibtisch", "Projekte", "Rechnungen", "Reisepläne", "Jürgen Müller"),
        "link": ("Startseite", "Über uns", "Preise", "Kontakt", "Hilfe", "Datenschutz", "Passwort vergessen?"),
        "slider": ("Lautstärke", "Helligkeit", "Schriftgröße"),
        "title": ("Kontoeinstellungen", "Neue Nachricht", "Einstellungen", "Konto erstellen"),
        "nav": ("Start", "Suche", "Bibliothek", "Profil", "Einstellungen"),
    },
    "fr": {
        "button": ("Enregistrer", "Annuler", "Appliquer", "Supprimer", "Ouvrir", "Fermer", "Suivant", "Précédent",
                   "Envoyer", "Se connecter", "Rechercher", "Modifier", "Imprimer", "Ajouter", "Terminé"),
        "field": ("Adresse e-mail", "Mot de passe", "Prénom", "Nom", "Téléphone", "Société", "Ville", "Pays"),
        "check": ("Se souvenir de moi", "J'accepte les conditions", "Recevoir la newsletter", "Mode sombre",
                  "Activer les notifications", "Sauvegarde automatique"),
        "option": ("Petit", "Moyen", "Grand", "Quotidien", "Hebdomadaire", "Public", "Privé"),
        "menu": ("Fichier", "Édition", "Affichage", "Insertion", "Outils", "Aide"),
        "menu_item": ("Nouveau", "Ouvrir…", "Enregistrer sous…", "Préférences", "Quitter", "Copier", "Coller"),
        "tab": ("Général", "Apparence", "Confidentialité", "Avancé", "Réseau", "Comptes", "Sécurité"),
        "item": ("Documents", "Téléchargements", "Images", "Musique", "Bureau", "Projets", "Factures", "Hélène Dupré"),
        "link": ("Accueil", "À propos", "Tarifs", "Contact", "Aide", "Mot de passe oublié ?", "En savoir plus"),
        "slider": ("Volume", "Luminosité", "Taille du texte"),
        "title": ("Paramètres du compte", "Nouveau message", "Préférences", "Créer un compte"),
        "nav": ("Accueil", "Recherche", "Bibliothèque", "Profil", "Réglages"),
    },
    "es": {
        "button": ("Guardar", "Cancelar", "Aplicar", "Eliminar", "Abrir", "Cerrar", "Siguiente", "Atrás", "Enviar",
                   "Iniciar sesión", "Buscar", "Editar", "Imprimir", "Añadir", "Listo"),
        "field": ("Correo electrónico", "Contraseña", "Usuario", "Nombre", "Apellidos", "Teléfono", "Dirección", "Ciudad"),
        "check": ("Recordarme", "Acepto los términos", "Suscribirse al boletín", "Modo oscuro", "Notificaciones",
                  "Guardado automático"),
        "option": ("Pequeño", "Mediano", "Grande", "Diario", "Semanal", "Público", "Privado"),
        "menu": ("Archivo", "Edición", "Ver", "Insertar", "Herramientas", "Ayuda"),
        "menu_item": ("Nuevo", "Abrir…", "Guardar como…", "Preferencias", "Salir", "Copiar", "Pegar"),
        "tab": ("General", "Apariencia", "Privacidad", "Avanzado", "Red", "Cuentas", "Seguridad"),
        "item": ("Documentos", "Descargas", "Imágenes", "Música", "Escritorio", "Proyectos", "Facturas", "José Núñez"),
        "link": ("Inicio", "Acerca de", "Precios", "Contacto", "Ayuda", "¿Olvidaste tu contraseña?", "Más información"),
        "slider": ("Volumen", "Brillo", "Tamaño de letra"),
        "title": ("Configuración de la cuenta", "Nuevo mensaje", "Preferencias", "Crear cuenta"),
        "nav": ("Inicio", "Buscar", "Biblioteca", "Perfil", "Ajustes"),
    },
    "ru": {
        "button": ("Сохранить", "Отмена", "Применить", "Удалить", "Открыть", "Закрыть", "Далее", "Назад",
                   "Отправить", "Войти", "Поиск", "Изменить", "Печать", "Добавить", "Готово"),
        "field": ("Электронная почта", "Пароль", "Имя пользователя", "Имя", "Фамилия", "Телефон", "Адрес", "Город"),
        "check": ("Запомнить меня", "Я принимаю условия", "Подписаться на рассылку", "Тёмная тема",
                  "Включить уведомления", "Автосохранение"),
        "option": ("Маленький", "Средний", "Большой", "Ежедневно", "Еженедельно", "Публичный", "Личный"),
        "menu": ("Файл", "Правка", "Вид", "Вставка", "Сервис", "Справка"),
        "menu_item": ("Создать", "Открыть…", "Сохранить как…", "Настройки", "Выход", "Копировать", "Вставить"),
        "tab": ("Общие", "Внешний вид", "Конфиденциальность", "Дополнительно", "Сеть", "Учётные записи"),
        "item": ("Документы", "Загрузки", "Изображения", "Музыка", "Рабочий стол", "Проекты", "Счета", "Анна Петрова"),
        "link": ("Главная", "О нас", "Цены", "Контакты", "Помощь", "Забыли пароль?", "Подробнее"),
        "slider": ("Громкость", "Яркость", "Размер шрифта"),
        "title": ("Настройки учётной записи", "Новое сообщение", "Параметры", "Создать аккаунт"),
        "nav": ("Главная", "Поиск", "Библиотека", "Профиль", "Настройки"),
    },
    "zh": {
        "button": ("保存", "取消", "应用", "删除", "打开", "关闭", "下一步", "返回", "发送", "登录", "搜索", "编辑",
                   "打印", "添加", "完成", "确定"),
        "field": ("电子邮件", "密码", "用户名", "姓名", "电话", "地址", "城市", "公司"),
        "check": ("记住我", "我同意条款", "订阅新闻", "深色模式", "启用通知", "自动保存"),
        "option": ("小", "中", "大", "每天", "每周", "公开", "私密"),
        "menu": ("文件", "编辑", "视图", "插入", "工具", "帮助"),
        "menu_item": ("新建", "打开…", "另存为…", "首选项", "退出", "复制", "粘贴"),
        "tab": ("常规", "外观", "隐私", "高级", "网络", "账户", "安全"),
        "item": ("文档", "下载", "图片", "音乐", "桌面", "项目", "发票", "张伟"),
        "link": ("首页", "关于我们", "价格", "联系我们", "帮助", "忘记密码？", "了解更多"),
        "slider": ("音量", "亮度", "字体大小"),
        "title": ("账户设置", "新消息", "首选项", "创建账户"),
        "nav": ("首页", "搜索", "资料库", "我的", "设置"),
    },
}

# English labels -> other ways to ask for the same element (instructions "by synonym").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "Save": ("store the changes", "keep my changes"),
    "Cancel": ("abort", "dismiss without saving"),
    "OK": ("accept", "confirm"),
    "Apply": ("apply the changes",),
    "Delete": ("remove the item", "erase it"),
    "Remove": ("take it out", "delete it"),
    "Open": ("open a file",),
    "Close": ("dismiss", "shut this"),
    "Next": ("go to the next step", "proceed"),
    "Back": ("go back", "return to the previous step"),
    "Submit": ("send the form",),
    "Sign in": ("log in", "log on"),
    "Sign up": ("register", "create an account"),
    "Continue": ("proceed", "go on"),
    "Search": ("find", "look it up"),
    "Send": ("send the message",),
    "Edit": ("modify", "make changes"),
    "Share": ("send to someone",),
    "Download": ("save a copy locally",),
    "Print": ("make a paper copy",),
    "Refresh": ("reload",),
    "Help": ("get help", "open the help"),
    "Done": ("finish",),
    "Add": ("create a new one", "add another"),
    "Create": ("make a new one",),
    "Reset": ("restore the defaults",),
    "Confirm": ("approve",),
    "Settings": ("preferences", "options"),
}

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")

# Sample text typed into fields by "type" targets.
TYPED_TEXT = ("alice@example.com", "hunter2!", "Zoë Müller", "42", "Berlin", "佐藤花子", "Москва", "hello world")

KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


__all__ = ["KEYBOARD_ROWS", "LANGUAGES", "LANGUAGE_WEIGHTS", "ORDINALS", "SYNONYMS", "TYPED_TEXT", "VOCAB"]
