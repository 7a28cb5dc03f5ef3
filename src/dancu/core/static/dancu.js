// dancu pages: small enhancements that the pages work without.
// The tab bar scrolls sideways on a narrow screen: bring the current tab into view.
(function () {
  "use strict";
  function setUp(nav) {
    var current = nav.querySelector('[aria-current="page"]');
    if (current && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  }
  function ready() {
    var navs = document.querySelectorAll(".main-nav");
    for (var i = 0; i < navs.length; i++) setUp(navs[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
