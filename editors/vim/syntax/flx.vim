" Vim syntax file for flx, a language for feature-learning experiments.
" The same classes as flx's own highlighter (`flx highlight`) and the VS Code and
" Sublime grammars; tests/editors.rs holds all of them to flx's lexer.
"
" Among matches and regions that start at the same place, Vim takes the one
" defined last: so the catch-all error comes first and the special cases last.

if exists("b:current_syntax")
  finish
endif
let s:cpo_save = &cpo
set cpo&vim

syn case match
" Strings and brackets span lines: always parse from the top.
syn sync fromstart

" ---- tokens, in rising priority ---------------------------------------------------
syn match flxError /\S/
syn match flxInterpError /[^}:"[:space:]]/ contained
syn match flxInterpPunct /[,;)\]{]/ contained
syn match flxName /\h\w*/
syn match flxDelimiter /[,;:)\]}]/
syn match flxAccessor /\./ nextgroup=flxField skipwhite
syn match flxField /\h\w*/ contained
syn match flxOperator /\.\.=\=\|[=!<>]=\|[-+*/]=\|[-+*/%^@<>=|]/
syn match flxNumber /\d[0-9_]*\w\@!/
syn match flxFloat /\d[0-9_]*\.\.\@!\%(\d[0-9_]*\)\=\%([eE][+-]\=\d[0-9_]*\)\=\|\d[0-9_]*[eE][+-]\=\d[0-9_]*\|\.\d[0-9_]*\%([eE][+-]\=\d[0-9_]*\)\=/
syn match flxContinuation /\\$/

syn match flxConditional /\w\@<!\%(if\|else\|try\|catch\)\w\@!/
syn match flxRepeat /\w\@<!\%(for\|in\|while\|break\|continue\)\w\@!/
syn match flxKeyword /\w\@<!\%(let\|return\)\w\@!/
syn match flxImport /\w\@<!as\w\@!/
syn match flxImport /\w\@<!use\w\@!/ nextgroup=flxModule skipwhite
syn match flxModule /\h\w*/ contained
syn match flxLogical /\w\@<!\%(and\|or\|not\)\w\@!/
syn match flxConstant /\w\@<!\%(true\|false\|none\)\w\@!/
syn match flxBuiltin /\w\@<!\%(abs\|accuracy\|adam\|agop\|alignment\|all\|any\|append\|arange\|argmax\|argmin\|argsort\|assert\|bool\|ceil\|choice\|chol\|clip\|cols\|concat\|corr\|cos\|cumprod\|cumsum\|det\|diag\|dtype\|eigh\|einsum\|exp\|expand_dims\|eye\|flip\|float\|floor\|full\|gd\|grad\|gram\|hinge\|hstack\|int\|inv\|isfinite\|isnan\|jacobian\|kron\|krr\|krr_solve\|len\|linspace\|load_csv\|load_npy\|load_table\|log\|log_softmax\|logsumexp\|lstsq\|max\|mean\|median\|min\|mpow\|mse\|nonzero\|norm\|onehot\|ones\|out\|outer\|patches\|permutation\|pinv\|plot\|pow\|print\|prod\|progress\|qr\|quantile\|r2\|rand\|randint\|randn\|relu\|repeat\|reshape\|roll\|round\|rows\|save_csv\|save_npy\|sgd\|shape\|sigmoid\|sign\|sin\|softmax\|solve\|sort\|sqrt\|squeeze\|stack\|std\|str\|sum\|svd\|tanh\|tile\|time\|trace\|train\|tril\|triu\|unique\|value_and_grad\|var\|vmap\|vstack\|where\|xent\|zeros\)\w\@!/

" Declarations and the names they define.
syn match flxDeclaration /\w\@<!\%(fn\|loss\|proc\)\w\@!/ nextgroup=flxDefinition skipwhite
syn match flxDefinition /\h\w*/ contained

" A model: its name, its parameter list, then its body, where `param` and
" `forward` start items and `lr` scales a param.
syn match flxDeclaration /\w\@<!model\w\@!/ nextgroup=flxModelName skipwhite
syn match flxModelName /\h\w*/ contained nextgroup=flxModelParams skipwhite
syn region flxModelParams matchgroup=flxDelimiter start=/(/ end=/)/ contained
      \ contains=@flxCode,flxLabel nextgroup=flxModelBody skipwhite
syn region flxModelBody matchgroup=flxDelimiter start=/{/ end=/}/ contained
      \ contains=@flxCode,flxLabel,flxParamItem,flxForward
syn region flxParamItem matchgroup=flxModelKeyword
      \ start=/\%(\%(^\|[{;]\)\s*\)\@<=param\w\@!/ end=/\\\@<!$/ end=/[;}]\@=/ contained
      \ contains=@flxCode,flxParamName,flxLr
syn match flxParamName /\%(\w\@<!param\s*\)\@<=\h\w*/ contained
syn match flxLr /\w\@<!lr\w\@!/ contained
syn match flxForward /\%(\%(^\|[{;]\)\s*\)\@<=forward\w\@!/ contained

" A kernel binds the pair geometry from `kernel` to the end of its line (longer
" inside brackets or after a `\`).
syn region flxKernel matchgroup=flxDeclaration start=/\w\@<!kernel\w\@!/
      \ end=/\\\@<!$/ end=/[;)\]}]\@=/ contains=@flxKernelCode,flxKernelName
syn match flxKernelName /\%(\w\@<!kernel\s*\)\@<=\h\w*/ contained
syn match flxGeometry /\w\@<!\%(dist\|sqdist\|dot\|xnorm\|znorm\|l1dist\)\w\@!/ contained

" Brackets; a label (`seed:`, `{train: X}`) directly inside `(...)` or `{...}`.
syn region flxParens matchgroup=flxDelimiter start=/(/ end=/)/ contains=@flxCode,flxLabel
syn region flxBrackets matchgroup=flxDelimiter start=/\[/ end=/]/ contains=@flxCode
syn region flxBraces matchgroup=flxDelimiter start=/{/ end=/}/ contains=@flxCode,flxLabel
syn region flxKernelParens matchgroup=flxDelimiter start=/(/ end=/)/ contained
      \ contains=@flxKernelCode,flxLabel
syn region flxKernelBrackets matchgroup=flxDelimiter start=/\[/ end=/]/ contained
      \ contains=@flxKernelCode
syn region flxKernelBraces matchgroup=flxDelimiter start=/{/ end=/}/ contained
      \ contains=@flxKernelCode,flxLabel
syn match flxLabel /\h\w*\ze\s*:/ contained

" Strings, with escapes and interpolations `{expr}` / `{expr:spec}`.
syn region flxString start=/"/ end=/"/ contains=flxInterp,flxEscape,flxStringError
syn match flxStringError /}/ contained
syn region flxInterp matchgroup=flxInterpDelim start=/{/ end=/}/ contained
      \ contains=@flxInterpCode,flxSpecColon
syn match flxEscape /\\\_.\|{{\|}}/ contained
syn match flxSpecColon /:/ contained nextgroup=flxFormatSpec
syn match flxFormatSpec /[^}"]*/ contained

syn match flxComment /#.*$/ contains=flxTodo
syn keyword flxTodo TODO FIXME XXX contained

syn cluster flxWords contains=flxName,flxAccessor,flxOperator,flxNumber,flxFloat,
      \flxConditional,flxRepeat,flxKeyword,flxImport,flxLogical,flxConstant,flxBuiltin,
      \flxDeclaration,flxString
syn cluster flxCode contains=flxError,@flxWords,flxDelimiter,flxContinuation,flxComment,
      \flxKernel,flxParens,flxBrackets,flxBraces
syn cluster flxKernelCode contains=flxError,@flxWords,flxDelimiter,flxContinuation,flxComment,
      \flxGeometry,flxKernelParens,flxKernelBrackets,flxKernelBraces
syn cluster flxInterpCode contains=flxInterpError,@flxWords,flxInterpPunct,flxParens,flxBrackets

" ---- colours ---------------------------------------------------------------------
hi def link flxError Error
hi def link flxStringError Error
hi def link flxInterpError Error
hi def link flxDelimiter Delimiter
hi def link flxAccessor Delimiter
hi def link flxInterpPunct Delimiter
hi def link flxContinuation Delimiter
hi def link flxOperator Operator
hi def link flxNumber Number
hi def link flxFloat Float
hi def link flxConditional Conditional
hi def link flxRepeat Repeat
hi def link flxKeyword Statement
hi def link flxImport Include
hi def link flxLogical Operator
hi def link flxConstant Constant
hi def link flxBuiltin Function
hi def link flxDeclaration Statement
hi def link flxDefinition Function
hi def link flxModelName Function
hi def link flxKernelName Function
hi def link flxParamName Identifier
hi def link flxModelKeyword Keyword
hi def link flxLr Keyword
hi def link flxForward Keyword
hi def link flxGeometry Special
hi def link flxLabel Identifier
hi def link flxString String
hi def link flxEscape SpecialChar
hi def link flxFormatSpec SpecialChar
hi def link flxInterpDelim Special
hi def link flxSpecColon Special
hi def link flxComment Comment
hi def link flxTodo Todo

let b:current_syntax = "flx"
let &cpo = s:cpo_save
unlet s:cpo_save
