// A small Jalali date picker for inputs with class "jalali-date" (typing the date works without it).
(function () {
  "use strict";
  var FA = "۰۱۲۳۴۵۶۷۸۹";
  var MONTHS = ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند"];
  function fa(n) { return String(n).replace(/[0-9]/g, function (d) { return FA[d]; }); }
  function latin(s) { return s.replace(/[۰-۹]/g, function (d) { return FA.indexOf(d); }).replace(/[٠-٩]/g, function (d) { return d.charCodeAt(0) - 0x660; }); }
  function div(a, b) { return ~~(a / b); }
  // Jalali <-> Julian day number (the jalaali algorithm by Borkowski, as in jalaali-js).
  var BREAKS = [-61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097, 2192, 2262, 2324, 2394, 2456, 3178];
  function jalCal(jy) {
    var bl = BREAKS.length, gy = jy + 621, leapJ = -14, jp = BREAKS[0], jm, jump, leap, n, i;
    for (i = 1; i < bl; i += 1) { jm = BREAKS[i]; jump = jm - jp; if (jy < jm) break; leapJ = leapJ + div(jump, 33) * 8 + div(jump % 33, 4); jp = jm; }
    n = jy - jp; leapJ = leapJ + div(n, 33) * 8 + div((n % 33) + 3, 4);
    if ((jump % 33) === 4 && jump - n === 4) leapJ += 1;
    var leapG = div(gy, 4) - div((div(gy, 100) + 1) * 3, 4) - 150, march = 20 + leapJ - leapG;
    if (jump - n < 6) n = n - jump + div(jump + 4, 33) * 33;
    leap = (((n + 1) % 33) - 1) % 4; if (leap === -1) leap = 4;
    return { leap: leap, gy: gy, march: march };
  }
  function g2d(gy, gm, gd) {
    var d = div((gy + div(gm - 8, 6) + 100100) * 1461, 4) + div(153 * ((gm + 9) % 12) + 2, 5) + gd - 34840408;
    return d - div(div(gy + 100100 + div(gm - 8, 6), 100) * 3, 4) + 752;
  }
  function d2g(jdn) {
    var j = 4 * jdn + 139361631; j = j + div(div(4 * jdn + 183187720, 146097) * 3, 4) * 4 - 3908;
    var i = div(j % 1461, 4) * 5 + 308, gd = div(i % 153, 5) + 1, gm = (div(i, 153) % 12) + 1, gy = div(j, 1461) - 100100 + div(8 - gm, 6);
    return [gy, gm, gd];
  }
  function j2d(jy, jm, jd) { var r = jalCal(jy); return g2d(r.gy, 3, r.march) + (jm - 1) * 31 - div(jm, 7) * (jm - 7) + jd - 1; }
  function d2j(jdn) {
    var gy = d2g(jdn)[0], jy = gy - 621, r = jalCal(jy), k = jdn - g2d(gy, 3, r.march);
    if (k >= 0) { if (k <= 185) return [jy, 1 + div(k, 31), (k % 31) + 1]; k -= 186; }
    else { jy -= 1; k += 179; if (r.leap === 1) k += 1; }
    return [jy, 7 + div(k, 30), (k % 30) + 1];
  }
  function monthLength(jy, jm) { return jm <= 6 ? 31 : jm <= 11 ? 30 : (jalCal(jy).leap === 0 ? 30 : 29); }
  function today() { var t = new Date(); return d2j(g2d(t.getFullYear(), t.getMonth() + 1, t.getDate())); }
  function parse(v) { var m = latin(v || "").match(/^(\d{4})[\/\-](\d{1,2})[\/\-](\d{1,2})$/); return m ? [+m[1], +m[2], +m[3]] : null; }
  function pad(n) { return n < 10 ? "0" + n : String(n); }

  var open = null;
  function close() { if (open) { open.remove(); open = null; } }
  function show(input, jy, jm) {
    close();
    var box = document.createElement("div");
    box.className = "jalali-picker"; box.setAttribute("role", "dialog"); box.setAttribute("aria-label", "انتخاب تاریخ شمسی");
    var first = (j2d(jy, jm, 1) + 2) % 7; // 0 = Saturday
    var html = '<div class="head"><button type="button" data-step="-1" aria-label="ماه پیش">›</button><span>' + MONTHS[jm - 1] + " " + fa(jy) +
      '</span><button type="button" data-step="1" aria-label="ماه بعد">‹</button></div><table><thead><tr>';
    ["ش", "ی", "د", "س", "چ", "پ", "ج"].forEach(function (d) { html += "<th scope=\"col\">" + d + "</th>"; });
    html += "</tr></thead><tbody><tr>";
    for (var i = 0; i < first; i += 1) html += "<td></td>";
    for (var d = 1; d <= monthLength(jy, jm); d += 1) {
      if ((first + d - 1) % 7 === 0 && d > 1) html += "</tr><tr>";
      html += '<td><button type="button" data-day="' + d + '" aria-label="' + fa(d) + " " + MONTHS[jm - 1] + " " + fa(jy) + '">' + fa(d) + "</button></td>";
    }
    box.innerHTML = html + "</tr></tbody></table>";
    box.addEventListener("click", function (e) {
      var b = e.target.closest("button"); if (!b) return;
      if (b.dataset.step) { var m = jm + +b.dataset.step, y = jy; if (m < 1) { m = 12; y -= 1; } if (m > 12) { m = 1; y += 1; } show(input, y, m); return; }
      input.value = fa(jy + "/" + pad(jm) + "/" + pad(+b.dataset.day)); close(); input.focus();
    });
    box.addEventListener("keydown", function (e) { if (e.key === "Escape") { close(); input.focus(); } });
    var r = input.getBoundingClientRect();
    box.style.top = (window.scrollY + r.bottom + 4) + "px";
    box.style.right = Math.max(4, document.documentElement.clientWidth - r.right) + "px";
    document.body.appendChild(box); open = box;
  }
  document.addEventListener("click", function (e) {
    var input = e.target.closest && e.target.closest("input.jalali-date");
    if (input) { var p = parse(input.value) || today(); show(input, p[0], p[1]); return; }
    if (open && !open.contains(e.target)) close();
  });
  document.addEventListener("keydown", function (e) {
    var input = e.target.closest && e.target.closest("input.jalali-date");
    if (input && e.key === "ArrowDown" && e.altKey) { var p = parse(input.value) || today(); show(input, p[0], p[1]); open.querySelector("button[data-day]").focus(); e.preventDefault(); }
    if (e.key === "Escape") close();
  });
})();
