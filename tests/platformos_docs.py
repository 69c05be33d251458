# ruff: noqa: E501, E101 - the documents keep their sources' long lines and indentation (a tab included)
"""GraphQL documents in the shapes platformOS's own guides, tutorials and modules use, written for the
compatibility suite (tests/test_platformos_*.py). Only table and property names differ from the
originals (platformOS's module tables are named like `modules/core/status`; ours cannot hold `/`).
Each document names the file whose shape it follows:

- pos-modules: github.com/Platform-OS/pos-modules
- docs: github.com/Platform-OS/platformos-documentation, app/views/pages/developer-guide/...
"""

from __future__ import annotations

from pathlib import Path

SCHEMA_DIR = Path(__file__).parent / "platformos_schema"

# -- the CRUD generator (pos-modules: pos-module-core/modules/core/generators/crud/templates/graphql/),
#    rendered for `employee name:string age:integer enabled:boolean` ------------------------------

CRUD_CREATE = """
mutation create_employee(
  $name: String!
  $age: Int!
  $enabled: Boolean!
) {
  record: record_create(
    record: {
      table: "employee"
      properties: [
        { name: "name" value: $name }
        { name: "age" value_int: $age }
        { name: "enabled" value_boolean: $enabled }
      ]
    }
  ){
    id
    created_at
    deleted_at
    type: table

    name: property(name: "name")
    age: property_int(name: "age")
    enabled: property_boolean(name: "enabled")
  }
}"""

CRUD_SEARCH = """
query search(
  $id: ID
  $limit: Int = 20
  $page: Int = 1
  $name: String
  $age: String
  $enabled: String
) {
  employees: records(
    per_page: $limit
    page: $page
    filter: {
      id: { value: $id }
      table: { value: "employee" }
      properties: [
        { name: "name" value: $name }
        { name: "age" value: $age }
        { name: "enabled" value: $enabled }
      ]
    }
    sort: [
      { created_at: { order: DESC }}
    ]
  ){
    total_entries
    total_pages
    has_previous_page
    has_next_page
    results {
      id
      created_at
      type: table

      name: property(name: "name")
      age: property_int(name: "age")
      enabled: property_boolean(name: "enabled")
    }
  }
}"""

CRUD_UPDATE = """
mutation update_employee(
  $id: ID!
  $name: String
  $age: Int
  $enabled: Boolean
) {
  record: record_update(
    id: $id
    record: {
      table: "employee"
      properties: [
        { name: "name" value: $name }
        { name: "age" value_int: $age }
        { name: "enabled" value_boolean: $enabled }
      ]
    }
  ){
    id
    created_at
    updated_at
    type: table

    name: property(name: "name")
    age: property_int(name: "age")
    enabled: property_boolean(name: "enabled")
  }
}"""

CRUD_DELETE = """
mutation delete($id: ID!) {
  record: record_delete(
    table: "employee"
    id: $id
  ){ id }
}"""

# -- pos-modules: pos-module-core/modules/core/public/graphql/statuses/{create,search,delete}.graphql -------

STATUS_CREATE = """
mutation create_status(
  $name: String!
  $timestamp: String!
  $reference_id: String!
  $reference_schema: String
  $payload: String
  $requester_id: String!
) {
  record: record_create(
    record: {
      table: "status"
      properties: [
        { name: "name", value: $name }
        { name: "timestamp", value: $timestamp }
        { name: "reference_id", value: $reference_id }
        { name: "reference_schema", value: $reference_schema }
        { name: "payload", value: $payload }
        { name: "requester_id", value: $requester_id }
      ]
    }
  ) {
    id
    created_at
    deleted_at
    type: table

    name: property(name: "name")
    timestamp: property(name: "timestamp")
    reference_id: property(name: "reference_id")
    reference_schema: property(name: "reference_schema")
    payload: property(name: "payload")
    requester_id: property(name: "requester_id")
  }
}"""

STATUS_SEARCH = """
query search(
  $id: ID
  $limit: Int!
  $page: Int!
  $name: String
  $timestamp: String
  $reference_id: String
  $reference_schema: String
  $requester_id: String
) {
  statuses: records(
    per_page: $limit
    page: $page
    filter: {
      id: { value: $id }
      table: { value: "status" }
      properties: [
        { name: "name", value: $name }
        { name: "timestamp", value: $timestamp }
        { name: "reference_id", value: $reference_id }
        { name: "reference_schema", value: $reference_schema }
        { name: "requester_id", value: $requester_id }
      ]
    }
    sort: [{ created_at: { order: DESC } }]
  ) {
    total_entries
    has_next_page
    has_previous_page
    current_page

    results {
      id
      created_at
      type: table

      name: property(name: "name")
      timestamp: property(name: "timestamp")
      reference_id: property(name: "reference_id")
      reference_schema: property(name: "reference_schema")
      payload: property(name: "payload")
      requester_id: property(name: "requester_id")
    }
  }
}"""

STATUS_DELETE = """
mutation delete_status($id: ID!) {
  record_delete(table: "status", id: $id) {
    id
  }
}"""

# -- pos-modules: pos-module-core/modules/core/public/graphql/records/count.graphql -------------------

RECORDS_COUNT = """
query records_count(
  $property_name: String!
  $property_value: String!
  $scope_name: String!
  $scope_value: String
  $table: String!
  $not_ids: [ID!]
  $ids: [ID!]
  $exclude_name: String!
  $exclude_value: String
) {
  records(
    per_page: 1
    filter: {
      id: { not_value_in: $not_ids, value_in: $ids }
      table: { value: $table }
      properties: [
        { name: $property_name, value: $property_value }
        { name: $scope_name, value: $scope_value }
        { name: $exclude_name, not_value: $exclude_value }
      ]
    }
  ) {
    total_entries
  }
}"""

# -- pos-modules: pos-module-user/modules/user/public/graphql/profiles/{create,search}.graphql and
#    profiles/roles/{append,remove}.graphql ---------------------------------------------------------

PROFILE_CREATE = """
mutation (
  $uuid: String!
  $user_id: String!
  $first_name: String
  $last_name: String
  $name: String
  $email: String
  $roles: [String]
  $c__names: String
) {
  record: record_create(
    record: {
      table: "profile"
      properties: [
        { name: "user_id", value: $user_id }
        { name: "first_name", value: $first_name }
        { name: "last_name", value: $last_name }
        { name: "uuid", value: $uuid }
        { name: "name", value: $name }
        { name: "email", value: $email }
        { name: "roles", value_array: $roles }
        { name: "c__names", value: $c__names }
      ]
    }
  ) {
    id
    created_at
    type: table

    email: property(name: "email")
    first_name: property(name: "first_name")
    user_id: property(name: "user_id")
    roles: property_array(name: "roles")
    otp_configured: property_boolean(name: "otp_configured")
  }
}"""

PROFILE_SEARCH = """
query (
  $page: Int = 1
  $limit: Int = 20
  $first_name: String
  $email: String
  $emails: [String!]
  $id: ID
  $ids: [ID!]
  $not_ids: [ID!]
  $uuid: String
  $user_id: String
  $sort: RecordsSortInput = { created_at: { order: DESC } }
  $query: String
) {
  records(
    page: $page
    per_page: $limit
    filter: {
      id: { value: $id, value_in: $ids, not_value_in: $not_ids }
      table: { value: "profile" }
      properties: [
        { name: "uuid", value: $uuid }
        { name: "first_name", value: $first_name }
        { name: "user_id", value: $user_id }
        { name: "email", value: $email, value_in: $emails }
        { name: "c__names", contains: $query }
      ]
    }
    sort: [$sort]
  ) {
    total_entries
    total_pages
    has_previous_page
    has_next_page
    results {
      id
      created_at
      email: property(name: "email")
      first_name: property(name: "first_name")
      roles: property_array(name: "roles")
    }
  }
}"""

PROFILE_ROLE_APPEND = """
mutation (
  $id: ID!
  $role: String!
) {
  record: record_update(
    id: $id
    record: {
      table: "profile"
      properties: [
        { name: "roles", array_append: $role }
      ]
    }
  ) {
    id
    roles: property_array(name: "roles")
  }
}"""

PROFILE_ROLE_REMOVE = """
mutation (
  $id: ID!
  $role: String!
) {
  record: record_update(
    id: $id
    record: {
      table: "profile"
      properties: [
        { name: "roles", array_remove: $role }
      ]
    }
  ) {
    id
    roles: property_array(name: "roles")
  }
}"""

# -- pos-modules: pos-module-chat/modules/chat/public/graphql/{conversations,messages}/ ------------------

CONVERSATION_CREATE = """
mutation create_conversation($participant_ids: [String!]!, $participant_read_ids: [String!]!) {
  record_create(
    record: {
      table: "conversation"
      properties: [
        { name: "participant_ids", value_array: $participant_ids }
        { name: "participant_read_ids", value_array: $participant_read_ids }
      ]
    }
  ) {
    id
    participant_ids: property_array(name: "participant_ids")
  }
}"""

MESSAGE_CREATE = """
mutation create($conversation_id: String!, $message: String!, $autor_id: String!) {
  record_create(
    record: {
    table: "message"
    properties: [
      { name: "conversation_id", value: $conversation_id }
      { name: "message", value: $message }
      { name: "autor_id", value: $autor_id }
    ]
    }
  ) {
    id
    properties
  }
}"""

CONVERSATION_SEARCH = """
query search(
  $id: ID
  $participant_ids: [String!]
  $participant_id: [String!]
  $limit: Int = 20
  $page: Int = 1
  $include_messages: Boolean = false
  $messages_limit: Int = 20
) {
  conversations: records(
    per_page: $limit
    page: $page
    filter: {
      table: { exact: "conversation" },
      id: { value: $id }
      properties: [
        { name: "participant_ids", value_in: $participant_ids }
        { name: "participant_ids", array_contains: $participant_id }
      ]
    }
    sort: { updated_at: { order: DESC } }
  ) {
    total_entries
    results {
      id
      created_at
      participant_ids: property_array(name: "participant_ids")
      participant_read_ids: property_array(name: "participant_read_ids")
      messages: related_records(
        table: "message"
        join_on_property: "id"
        foreign_property: "conversation_id"
        limit: $messages_limit
        sort: { created_at: { order: DESC } }
      ) @include(if: $include_messages) {
        created_at
        message: property(name: "message")
        autor_id: property(name: "autor_id")
      }
      last_message: related_record(table: "message" join_on_property: "id" foreign_property: "conversation_id" sort: {created_at: {order: ASC}}){
        created_at
        message: property(name: "message")
      }
    }
  }
}"""

MESSAGE_SEARCH = """
query search(
  $conversation_id: [String!]
  $participant_id: [String!]
  $limit: Int = 20
  $page: Int = 1
  $id: ID
) {
  messages: records(
    per_page: $limit
    page: $page
    sort: { created_at: { order: DESC } }
    filter: {
      id: { value: $id }
      table: { exact: "message" },
      properties: [
        { name: "conversation_id", value_in: $conversation_id }
      ]

      related_records: {
        join: { join_on_property: "conversation_id", foreign_property: "id" }
        filter: {
          table: { value: "conversation" }
          properties: [
            { name: "participant_ids", array_contains: $participant_id }
          ]
        }
      }
    }
  ) {
    total_pages
    total_entries
    has_next_page
    has_previous_page
    results {
      id
      created_at

      message: property(name: "message")
      autor_id: property(name: "autor_id")
      conversation_id: property(name: "conversation_id")
    }
  }
}"""

# -- docs: properties/properties.liquid (filtering properties) -----------------------------------------

GET_RECORDS_TYPED = """
query get_records {
  records(
    per_page: 20,
    filter: {
      table: { value: "employee" }
    }
  ) {
    results {
      name: property(name: "name")
      age: property_int(name: "age")
      enabled: property_boolean(name: "enabled")
    }
  }
}"""

# Each of the guide's filter examples, with its variable where the guide has one.
PROPERTY_FILTERS = """
query get_records($filter: PropertyFilterInput!) {
  records(
    per_page: 20,
    filter: {
      properties: [$filter]
    }
  ) {
    results {
      first_name: property(name: "name")
    }
  }
}"""

GET_ALL_ADULTS_BELOW_60 = """
query get_all_adults_below_60($adult_age_treshold: String) {
  records(
    per_page: 20,
    filter: {
      properties: [{ name: "age", range: { gte: $adult_age_treshold, lt: "60" } }]
    }
  ) {
    results {
      first_name: property(name: "name")
    }
  }
}"""

# -- docs: records/loading-related-records.liquid -------------------------------------------------------

PROGRAMMERS = """
query programmers {
  programmers: records(
    filter: {
      table: { value: "programmer" }
    },
    per_page: 200
  ) {
    total_entries
    results {
      properties
      company: related_record(table: "company", join_on_property: "company_id") {
        url: property(name: "url")
        properties
      }
    }
  }
}"""

COMPANY = """
query company($id: ID) {
  companies: records(
    per_page: 20,
    filter: {
      table: { value: "company" },
      id: { value: $id }
    }
  ) {
    results {
      table
      id
      deleted_at
      properties
    }
  }
}"""

# -- docs: records/loading-related-records-from-array.liquid ---------------------------------------------

CREATE_RANKING = """
mutation createRanking {
  record_create(
    record: {
      table: "ranking"
    }
  ) {
    id
  }
}"""

UPDATE_RANKING = """
mutation updateRecord($id: ID!, $companies: [String], $vips: [String]) {
  record_update(
    id: $id
    record: {
      properties: [
        {
          name: "company_ids",
          value_array: $companies
        },
        {
          name: "vip_programmer_ids"
          value_array: $vips
        }
      ]
  }) {
    id
  }
}"""

APPEND_RANKING = """
mutation updateRecord($id: ID!, $name: String!, $value: String) {
  record_update(
    id: $id
    record: {
      properties: [
        { name: $name, array_append: $value }
      ]
  }) {
    id
    property_array(name: $name)
  }
}"""

RANKINGS = """
query rankings {
  rankings: records(
    per_page: 1,
    sort: {
      created_at: { order: DESC }
    },
    filter: {
      table: { value: "ranking" }
    }
  ) {
    results {
      vips: related_records(
        join_on_property: "vip_programmer_ids",
        foreign_property: "id",
        table:"programmer"
      ) {
        title: property(name: "title")
      }
      companies: related_records(
        join_on_property: "company_ids",
        foreign_property: "id",
        table: "company"
      ) {
        name: property(name: "name")
      }
    }
  }
}"""

# -- docs: blog/blog-settings-posts.liquid (get_blog_posts.graphql) ---------------------------------------

GET_BLOG_POSTS = """
query get_blog_posts($per_page: Int = 20, $page: Int, $title: String, $id: ID, $slug: String, $published_at_lte: String, $published_at_lt: String, $published_at_gt: String, $published_at_gte: String, $tags: [String!], $blog_instance_id: String) {
  blog_posts: records(
    per_page: $per_page,
    page: $page,
    filter: {
      id: { value: $id },
      table: { value: "blog_post" },
      properties: [
        { name: "tags", value_in: $tags },
        { name: "blog_instance_id", value: $blog_instance_id },
        { name: "title", value: $title },
        { name: "slug", value: $slug },
        { name: "published_at", range: { lte: $published_at_lte } },
        { name: "published_at", range: { lt: $published_at_lt } },
        { name: "published_at", range: { gt: $published_at_gt } },
        { name: "published_at", range: { gte: $published_at_gte  } }
      ]
    }
    sort: [
      {
        properties: [
          {
            name: "published_at",
            order: DESC
          }
        ]
      }
    ]

  ) {
    current_page
    per_page
    total_entries
    total_pages
    has_next_page
    has_previous_page
    results {
      id
      created_at
      published_at: property(name: "published_at")
      title: property(name: "title")
    }
  }
}"""

# -- docs: records/data-backup-removal.liquid -------------------------------------------------------------

DEFAULT_DELETE = """
mutation DefaultDelete($id: ID!) {
  record_delete(id: $id) {
    deleted_at
  	id
  }
}"""

DELETED_RECORDS = """
query records {
  records(
    per_page: 10
    filter: {
      deleted_at: { exists: true }
    }
  ) {
    results {
      deleted_at
      id
    }
  }
}"""

MANUAL_PURGE_DATE = """
mutation Delete($id: ID!) {
  record_update(
    id: $id
    record: {
      deleted_at: "2020-03-15T14:28:48.153Z"
    }
  ) {
    id
  }
}"""

UNDELETE = """
mutation Undelete($id: ID!) {
  record_update(
    id: $id
    record: { deleted_at: null }
  ) {
    id
  }
}"""

# -- pos-modules: pos-module-payments/modules/payments/public/graphql/{transactions/search,
#    gateway_requests/create}.graphql ------------------------------------------------------------------------

GATEWAY_REQUEST_CREATE = """
mutation create_gateway_request(
  $external_id: String!
  $request_url: String!
  $request_data: String!
  $name: String
) {
  record: record_create(
    record: {
      table: "gateway_request"
      properties: [
        { name: "external_id", value: $external_id }
        { name: "request_url", value: $request_url }
        { name: "request_data", value: $request_data }
        { name: "name", value: $name }
      ]
    }
  ) {
    id
    external_id: property(name: "external_id")
  }
}"""

TRANSACTION_SEARCH = """
query search(
  $id: ID
  $ids: [ID!]
  $limit: Int = 20
  $page: Int = 1
  $payable_ids: [String!]
  $amount_cents: String
  $currency: String
  $with_gateway_requests: Boolean = false
) {
  transactions: records(
    per_page: $limit
    page: $page
    filter: {
      id: { value: $id, value_in: $ids }
      table: { value: "transaction" }
      properties: [
        { name: "payable_ids", array_contains: $payable_ids }
        { name: "amount_cents", value: $amount_cents }
        { name: "currency", value: $currency }
      ]
    }
    sort: [{ created_at: { order: DESC } }]
  ) {
    total_entries
    has_next_page
    has_previous_page
    current_page

    results {
      id
      created_at
      type: table

      payable_ids: property_array(name: "payable_ids")
      amount_cents: property_int(name: "amount_cents")
      currency: property(name: "currency")
      gateway_requests: related_records(
        join_on_property: "id"
        foreign_property: "external_id"
        table: "gateway_request"
        sort: { created_at: { order: DESC } }
      ) @include(if: $with_gateway_requests) {
        id
        type: table
        created_at

        external_id: property(name: "external_id")
        request_url: property(name: "request_url")
      }
    }
  }
}"""

# -- pos-modules: pos-module-payments-stripe/.../connected_accounts/{create,search}.graphql ------------------

CONNECTED_ACCOUNT_CREATE = """
mutation create(
  $account_id: String!
  $reference_id: String!
  $state: String
  $last_errors: String
  $stripe_account_name: String
  $data: JSONPayload
) {
  record: record_create(
    record: {
      table: "connected_account"
      properties: [
        { name: "account_id", value: $account_id }
        { name: "reference_id", value: $reference_id }
        { name: "state", value: $state }
        { name: "last_errors", value: $last_errors }
        { name: "stripe_account_name", value: $stripe_account_name }
        { name: "data", value_json: $data }
      ]
    }
  ) {
    table
    created_at
    updated_at

    id
    account_id: property(name: "account_id")
    reference_id: property(name: "reference_id")
    state: property(name: "state")
    last_errors: property(name: "last_errors")
    stripe_account_name: property(name: "stripe_account_name")
    data: property_json(name: "data")
  }
}"""

# pos-modules: pos-module-reports/modules/reports/public/graphql/reports/search.graphql reads JSON kept in a
# string property with property_object.
OBJECT_READ = """
query search($id: ID) {
  records(per_page: 20, filter: { id: { value: $id }, table: { value: "connected_account" } }) {
    results {
      options: property_object(name: "data")
      data: property(name: "data")
    }
  }
}"""

# -- docs: user-uploads/user-uploads.liquid and uploading-files-directly-amazons3-using-uppy.liquid;
#    pos-modules: pos-module-common-styling/app/graphql/uploads/{presign,create,search}.graphql ----------

PRESIGN_DOCUMENT = """
mutation presign {
  property_upload_presigned_url(table: "documents", property_name: "resume", include_content_type: true) {
    upload_url
    upload_url_payload
  }
}"""

PRESIGN_UPPY = """
mutation presign {
  property_upload_presigned_url(table: "uppy", property_name: "my_upload") {
    upload_url
    upload_url_payload
  }
}"""

PRESIGN_MODULE = """
mutation presign($table: String!, $property: String!) {
  property_upload_presigned_url(table: $table, property_name: $property, include_content_type: true) {
    upload_url
    upload_url_payload
  }
}"""

RECORD_CREATE_DOCUMENT = """
mutation record_create($direct_url: String!) {
  record_create(
    record: {
      table: "documents"
      properties: [{ name: "resume" value: $direct_url }]
      }
  ) {
    id
  }
}"""

RECORD_CREATE_UPPY = """
mutation record_create($direct_url: String!, $user_id: ID!) {
  record_create(record: {
    table: "uppy"
    user_id: $user_id
    properties: [{ name: "my_upload" value: $direct_url }]
  }) {
    id
  }
}"""

GET_DOCUMENTS = """
query get_documents {
  records(per_page: 20 filter: { table: { value: "documents" } }) {
    results {
      my_upload: property_upload(name: "resume") {
        url
      }
    }
  }
}"""

GET_RECORDS_UPPY = """
query get_records($per_page: Int = 5, $user_id: ID!) {
  records(
    per_page: $per_page
    sort: { created_at: { order: DESC } }
    filter: {
      table: { value: "uppy" },
      user_id: { value: $user_id }
    }
  ) {
    total_entries
    results {
      id
      my_upload: property_upload(name: "my_upload") {
        url
        versions
      }
    }
  }
}"""

UPLOADS_SEARCH = """
query uploads {
  uploads: records(
    per_page: 10,
    filter: {
      table: {
        value: "uploads"
      }
    }
  ) {
    results {
      id
      upload: property_upload(name: "upload"){
        file_name
        url
        versions
        extension
      }
      metadata: property_json(name: "metadata")
    }
  }
}"""

UPLOAD_CREATE = """
mutation upload($url: String) {
  record_create(
    record: {
        table: "uploads", properties: { name: "upload", value: $url }
    }
  ) {
    id,
    metadata: property_json(name: "metadata")
    file: property_upload(name: "upload"){
      file_name
      extension
      url
      versions
    }
  }
}"""

# docs: user-uploads/generating-uploading-pdf.liquid (property_upload with expires_in)
SIGNED_PDF = """
query get($id: ID!) {
  records(per_page: 1, filter: { id: { value: $id } }) {
    results {
      url: property_upload(name:"resume", expires_in: 600) {
        extension
        file_name
        url
        versions
      }
    }
  }
}"""

# -- value_upload: files the server creates -------------------------------------------------------------

# docs: user-uploads/generating-uploading-pdf.liquid, step 2 (app/graphql/generate_pdf.graphql): HTML in
# `content`, rendered into a PDF; the same shape as platformos-examples' modules/pdf_generation/public/graphql/generate_pdf.graphql
GENERATE_PDF = """
mutation {
  record_create(
    record: {
      table: "model_with_upload"
      properties: [ {
        name: "the_upload"
        value_upload: {
          type: pdf
          content: "<html><head><title>Test PDF</title></head><body><h1>This will be the content of the pdf</h1></body></html>"
        }
      } ]
    }
  ) {
    id
    url: property_upload(name:"the_upload", expires_in: 600) {
      extension
      file_name
      url
      versions
    }
  }
}"""

# docs: user-uploads/generating-uploading-pdf.liquid, step 3 (app/graphql/get_pdf_requests.graphql)
GET_PDF_REQUESTS = """
query($id: ID) {
  records(
    per_page: 3
    filter: {
      id: { value: $id } # use this if the id is known
      table: { value: "model_with_upload" }
    }
  ) {
    results {
      id
      url: property_upload(name:"the_upload", expires_in: 600) {
        extension
        file_name
        url
        versions
      }
    }
  }
}"""

# pos-modules: pos-module-reports/modules/reports/public/graphql/documents/create_with_content.graphql (a CSV
# export: plain text, its type and a download name given by the caller). The module reads back
# `property_upload(name: "file")`, a property its table does not have; here the upload property's own name.
DOCUMENT_CREATE_WITH_CONTENT = """
mutation create_with_content(
  $creator_id: String!
  $content: String!
  $object_uuid: String!
  $document_type: String!
  $content_type: String
  $cache_control: String
  $content_disposition: String
) {
  record: record_create(
    record: {
      table: "document"
      properties: [
        { name: "creator_id" value: $creator_id }
        {
          name: "document"
          value_upload: {
            acl: private
            content: $content
            type: plain
            content_type: $content_type
            content_disposition: $content_disposition
            cache_control: $cache_control
          }
        }
        { name: "object_uuid" value: $object_uuid }
        { name: "document_type" value: $document_type }
      ]
    }) {
    id
    file: property_upload(name: "document", expires_in: 5) { url }
  }
}"""

# An image fetched by the server from a URL: platformOS's remote_url (release notes of 4 October 2021), in
# the shape of the CRUD generator's create.graphql, with the URL as a variable.
IMAGE_FROM_REMOTE_URL = """
mutation create($remote_url: String!) {
  record: record_create(
    record: {
      table: "uploads"
      properties: [
        { name: "upload" value_upload: { type: image, remote_url: $remote_url, acl: public } }
      ]
    }
  ){
    id
    file: property_upload(name: "upload") {
      file_name
      extension
      url
      versions
    }
  }
}"""
